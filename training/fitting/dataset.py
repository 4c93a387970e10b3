"""Encoded impression logs as tensors, and the minibatches a trainer draws from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from common.encoder import FeatureEncoder
from training.logs.column_arrays import column_array, feature_columns
from training.logs.explored_rows import EXPLORED, explored_rows
from training.position_ctr import position_ctr_per_row

LABELS = ("click", "conversion", "position")


@dataclass
class ImpressionTensors:
    """Every row of a log, encoded: inputs, labels and the position CTR ``b``, each a tensor of B rows; with a
    ``propensity`` column, ``explored`` too (each row displayed in a random order: training/logs/explored_rows.py)."""

    tensors: dict[str, torch.Tensor]

    @classmethod
    def from_table(
        cls,
        table: pa.Table,
        encoder: FeatureEncoder,
        position_ctr: dict[int, float] | None = None,
        columns: dict[str, np.ndarray] | None = None,
    ) -> ImpressionTensors:
        """Encode ``table`` (its ``columns``, when the caller has read them already: ``feature_columns``);
        ``b`` is each row's position CTR over these rows, or over the whole log when its ``position_ctr``
        table is given (a streamed chunk of a larger log)."""
        columns = feature_columns(table, encoder.spec) if columns is None else columns
        encoded = encoder.encode(columns, table.num_rows)
        tensors = {
            "categorical": torch.from_numpy(encoded.categorical),
            "numeric": torch.from_numpy(encoded.numeric),
        }
        for label in LABELS:
            tensors[label] = torch.from_numpy(np.array(column_array(table, label), dtype=np.int64))
        # b: the CTR of each row's position over these logs (the position-bias summary)
        position, click = tensors["position"].numpy(), tensors["click"].numpy()
        b = position_ctr_per_row(position, click) if position_ctr is None else lookup_ctr(position, position_ctr)
        tensors["b"] = torch.from_numpy(b)
        explored = explored_rows(table)  # where the log says how each row was displayed: the explored start's rows
        if explored is not None:
            tensors[EXPLORED] = torch.from_numpy(explored)
        return cls(tensors)

    def __len__(self) -> int:
        return self.tensors["click"].shape[0]

    def take(self, rows: np.ndarray | slice) -> ImpressionTensors:
        index = torch.as_tensor(rows) if isinstance(rows, np.ndarray) else rows
        return ImpressionTensors({k: v[index] for k, v in self.tensors.items()})

    def minibatches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[dict]:
        """Shuffled minibatches when a generator is given, in order otherwise."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            yield {k: v.index_select(0, rows) for k, v in self.tensors.items()}  # v[rows], a third of the time


def lookup_ctr(position: np.ndarray, position_ctr: dict[int, float]) -> np.ndarray:
    """(B,) float32: each row's position CTR from a table fitted on the whole log."""
    slots = np.array(sorted(position_ctr), dtype=np.int64)
    ctr = np.array([position_ctr[int(p)] for p in slots], dtype=np.float32)
    index = np.clip(np.searchsorted(slots, position), 0, max(len(slots) - 1, 0))
    if len(slots) == 0 or not np.array_equal(slots[index], position):
        unknown = sorted(set(np.unique(position).tolist()) - set(slots.tolist()))
        raise ValueError(f"positions {unknown[:5]} have no CTR in the log statistics (fitted on other logs?)")
    return ctr[index]
