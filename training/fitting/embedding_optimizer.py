"""Adam over a model's parameters, its embedding tables' rows lazily when ``[training] embedding_optimizer`` says so.

Dense Adam (``"adam"``, the default) moves every row of an embedding table on every step: a row no minibatch
touched still has moments from earlier steps, which go on moving it. That costs time in proportion to the
table, not to the rows a step reads: on a Criteo-like log (26 categorical columns, 710,300 buckets of 18
values) it was most of each step (docs/scale.md, "A large embedding table"). ``"sparse_adam"`` gives the
tables sparse gradients and ``torch.optim.SparseAdam``, which updates only the rows a minibatch looked up and
their moments ("lazy" Adam: other arithmetic, so another model than dense Adam's), and keeps Adam for the
other parameters. The tables stay ``nn.Embedding``: the flag changes the gradient's layout, not the weights
that are saved or exported. The setting's names and its check (``refuse_embedding_optimizer``), and the spec size
above which ``ctr new`` writes "sparse_adam", are in training/fitting/settings.py, which imports no torch.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class SplitAdam:
    """SparseAdam over embedding tables, Adam over the other parameters: the two calls ``fit.descend`` makes
    of an optimiser (``zero_grad``, ``step``) go to both."""

    def __init__(self, tables: list[nn.Parameter], others: list[nn.Parameter], learning_rate: float) -> None:
        self.optimizers: list[torch.optim.Optimizer] = [torch.optim.SparseAdam(tables, lr=learning_rate)]
        if others:
            self.optimizers.append(torch.optim.Adam(others, lr=learning_rate))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()


def adam(
    model: nn.Module, parameters: Iterable[nn.Parameter], learning_rate: float, weight_decay: float, embedding: str
) -> torch.optim.Optimizer | SplitAdam:
    """The optimiser of ``parameters`` (some or all of ``model``'s): Adam, or with ``embedding = "sparse_adam"``
    SparseAdam for the model's embedding tables among them, whose lookups then give sparse gradients."""
    parameters = list(parameters)
    if embedding == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)
    chosen = {id(parameter) for parameter in parameters}
    tables = [module for module in model.modules() if isinstance(module, nn.Embedding) and id(module.weight) in chosen]
    if not tables:  # e.g. an adversary that reads no embedding
        return torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)
    for table in tables:
        table.sparse = True
    table_ids = {id(table.weight) for table in tables}
    weights = list({id(table.weight): table.weight for table in tables}.values())  # a shared table once
    others = [parameter for parameter in parameters if id(parameter) not in table_ids]
    return SplitAdam(weights, others, learning_rate)
