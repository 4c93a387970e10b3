"""The training loop: Adam over shuffled minibatches of a model that owns its loss and metrics.

Any model with ``loss(batch) -> Tensor``, ``forward(categorical, numeric) -> dict`` and a static
``metrics(predictions, labels) -> dict`` trains here; the loop knows no model by name. A model that
trains differently (alternating optimisers, a phase after the main one) defines
``training_phases(config) -> list[TrainingPhase]``; one whose inference path holds values fixed from
the training data (e.g. the bias input b) defines ``fix_constants(tensors)``, called before training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training.dataset import ImpressionTensors

logger = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    epochs: int = 2  # passes over the training logs
    batch_size: int = 1024  # impressions per minibatch
    learning_rate: float = 1e-3  # Adam
    weight_decay: float = 0.0  # Adam's L2 penalty
    seed: int = 0  # initialisation and shuffling
    validation_fraction: float = 0.1  # the latest rows, held out for the metrics in model.json

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, not {self.epochs} and {self.batch_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), not {self.validation_fraction}")


@dataclass(frozen=True)
class TrainingPhase:
    """``epochs`` passes over the training rows, calling ``step(minibatch) -> loss`` on each minibatch."""

    name: str
    epochs: int
    step: Callable[[dict[str, torch.Tensor]], float]


def default_phases(model: nn.Module, config: TrainingConfig) -> list[TrainingPhase]:
    """Adam on ``model.loss`` for ``config.epochs``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)

    return [TrainingPhase("train", config.epochs, lambda batch: descend(optimizer, model.loss, batch))]


def descend(
    optimizer: torch.optim.Optimizer, loss_of: Callable[[dict[str, torch.Tensor]], torch.Tensor], batch: dict
) -> float:
    """One optimiser step on ``loss_of(batch)`` (only the optimiser's parameters move); returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_of(batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def split_by_time(data: ImpressionTensors, validation_fraction: float) -> tuple[ImpressionTensors, ImpressionTensors]:
    """Training rows first, the latest ``validation_fraction`` of rows (logs are in time order) last."""
    cut = round(len(data) * (1.0 - validation_fraction))
    return data.take(slice(0, cut)), data.take(slice(cut, len(data)))


@torch.no_grad()
def predict(model: nn.Module, data: ImpressionTensors, batch_size: int = 65536) -> dict[str, np.ndarray]:
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for batch in data.minibatches(batch_size):
        for name, value in model(batch["categorical"], batch["numeric"]).items():
            parts.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def evaluate(model: nn.Module, data: ImpressionTensors) -> dict[str, float]:
    """The model's metrics on ``data``; a model whose tensors are not impression rows (e.g. grouped by
    query) evaluates them itself through its ``validation_metrics(tensors)`` hook."""
    hook = getattr(model, "validation_metrics", None)
    if hook is not None:
        return {k: float(v) for k, v in hook(data.tensors).items()}
    labels = {name: data.tensors[name].numpy() for name in ("click", "conversion")}
    return {k: float(v) for k, v in model.metrics(predict(model, data), labels).items()}


def fit(model: nn.Module, data: ImpressionTensors, config: TrainingConfig, progress: bool = True) -> dict[str, float]:
    """Train ``model`` in place; returns its metrics on the held-out latest rows."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train, validation = split_by_time(data, config.validation_fraction)
    fix_constants = getattr(model, "fix_constants", None)
    if fix_constants is not None:
        fix_constants(train.tensors)
    phases = getattr(model, "training_phases", None)
    phases = phases(config) if phases is not None else default_phases(model, config)
    steps = (len(train) + config.batch_size - 1) // config.batch_size
    total, count, main_loss = 0.0, 0, float("nan")
    for phase in phases:
        for epoch in range(phase.epochs):
            model.train()
            total, count = 0.0, 0
            batches = train.minibatches(config.batch_size, generator)
            if progress:
                from tqdm import tqdm

                description = f"{phase.name} {epoch + 1}/{phase.epochs}"
                batches = tqdm(batches, total=steps, desc=description, unit="batch")
            for batch in batches:
                rows = batch["click"].shape[0]
                total += phase.step(batch) * rows
                count += rows
            logger.debug("%s epoch %d/%d: loss %.5f", phase.name, epoch + 1, phase.epochs, total / max(count, 1))
        if phase.epochs:
            logger.info("%s: %d epochs, last epoch's loss %.5f", phase.name, phase.epochs, total / max(count, 1))
        if phase is phases[0]:
            main_loss = total / max(count, 1)
    metrics = evaluate(model, validation) if len(validation) else {}
    metrics["training_loss"] = main_loss  # the last epoch of the first (main) phase
    return metrics
