"""Encoded impression logs as tensors, and the minibatches a trainer draws from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from common.encoder import FeatureEncoder
from training.logs import column_array, feature_columns
from training.position_ctr import position_ctr_per_row

LABELS = ("click", "conversion", "position")


@dataclass
class ImpressionTensors:
    """Every row of a log, encoded: inputs, labels and the position CTR ``b``, each a tensor of B rows."""

    tensors: dict[str, torch.Tensor]

    @classmethod
    def from_table(cls, table: pa.Table, encoder: FeatureEncoder) -> ImpressionTensors:
        encoded = encoder.encode(feature_columns(table, encoder.spec), table.num_rows)
        tensors = {
            "categorical": torch.from_numpy(encoded.categorical),
            "numeric": torch.from_numpy(encoded.numeric),
        }
        for label in LABELS:
            tensors[label] = torch.from_numpy(np.array(column_array(table, label), dtype=np.int64))
        # b: the CTR of each row's position over these logs (the position-bias summary)
        tensors["b"] = torch.from_numpy(position_ctr_per_row(tensors["position"].numpy(), tensors["click"].numpy()))
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
            yield {k: v[rows] for k, v in self.tensors.items()}
