"""Each slot's click log-odds over the explored rows of the training window: what ``bypass_start = "explored"`` fits.

The log start (training/models/bypass_start.py) fits the bypass's term to each slot's click rate over every training
row. Where a ranking put the better ads higher, that fall mixes the position effect with the ads': in the auction's
windows the ranked rows' clicks at slots 2, 3 over slot 1 were 0.45, 0.28 where the rows shown in a uniformly random
order logged 0.57, 0.31 with ads alike in every slot (docs/auction.md, "An exploration slice"). The explored start
fits the term to the *fall* of the explored rows' click rates (training/logs/explored_rows.py: 0 < propensity < 1),
whose slots the ads do not choose: each slot's rate over slot 1's is the explored rows'. Its *level* stays the log
start's: the explored rates are scaled by one factor so that their mean over the training rows is every row's click
rate, since the explored rows show ads drawn at random, whose clicks say nothing of the level of the ranked ads the
model mostly scores (the offset that goes with the term starts there, as the log start's does).

**Too few explored rows.** A slot's click log-odds from c clicks (and m rows without one) has a standard error of
about sqrt(1/c + 1/m): 0.45 at 5 clicks, a ratio to slot 1 uncertain by half or more below that. So every listed slot
needs ``MIN_SLOT_CLICKS`` clicks and as many rows without one among the explored training rows; otherwise, or
without explored rows (a log without ``propensity``, the world's feedback logs, the auction's history day), the
whole bypass starts from the log instead, with a warning saying why, and model.json's ``training.bypass_start``
records which start was used and the counts it was decided on (``ExploredSlots.record``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training.logs.explored_rows import EXPLORED

MIN_SLOT_CLICKS = 5  # clicks, and rows without one, that each slot needs among the explored training rows


@dataclass(frozen=True)
class ExploredSlots:
    """The explored rows among ``training_rows``, and at each listed slot (1, 2, ...) their rows and clicks;
    ``rows`` is None where the rows say nothing of exploration (no ``propensity`` column)."""

    training_rows: int
    rows: int | None
    rows_by_slot: list[int]
    clicks_by_slot: list[int]

    @classmethod
    def of(cls, tensors: dict[str, torch.Tensor], slots: int) -> ExploredSlots:
        """The counts over ``tensors`` (training rows) at slots 1..``slots``."""
        position = tensors["position"].numpy().astype(np.int64).reshape(-1)
        training_rows = int(position.size)
        if EXPLORED not in tensors:
            return cls(training_rows, None, [0] * slots, [0] * slots)
        explored = tensors[EXPLORED].numpy().astype(bool).reshape(-1)
        at = position[explored]
        click = tensors["click"].numpy().astype(np.float64).reshape(-1)[explored]
        rows = np.bincount(at, minlength=slots + 1)[1 : slots + 1]
        clicks = np.bincount(at, weights=click, minlength=slots + 1)[1 : slots + 1]
        return cls(training_rows, int(explored.sum()), rows.astype(int).tolist(), clicks.round().astype(int).tolist())

    def too_few(self) -> str | None:
        """Why the explored rows cannot set the start (None when they can), in words for the warning."""
        if self.rows is None:
            return (
                "the training rows have no numeric propensity column, so none is known to be explored "
                "(0 < propensity < 1, training/logs/explored_rows.py)"
            )
        if self.rows == 0:
            return f"none of the {self.training_rows} training rows is explored (0 < propensity < 1)"
        pairs = enumerate(zip(self.rows_by_slot, self.clicks_by_slot, strict=True))
        short = [k + 1 for k, (rows, clicks) in pairs if min(clicks, rows - clicks) < MIN_SLOT_CLICKS]
        if not short:
            return None
        return (
            f"slot(s) {short} hold fewer than {MIN_SLOT_CLICKS} clicks or rows without one among the {self.rows} "
            f"explored training rows (of {self.training_rows}; explored rows by slot {self.rows_by_slot}, clicks "
            f"{self.clicks_by_slot})"
        )

    def rates(self) -> np.ndarray:
        """Each slot's click rate over the explored rows (every slot has clicks and misses: ``too_few``)."""
        return np.array(self.clicks_by_slot, dtype=np.float64) / np.array(self.rows_by_slot, dtype=np.float64)

    def record(self, used: str, why: str | None) -> dict[str, Any]:
        """model.json's ``training.bypass_start``: the start asked for, the one used, the counts, and why not."""
        record: dict[str, Any] = {
            "asked": "explored",
            "used": used,
            "explored_rows": self.rows or 0,
            "explored_rows_by_slot": self.rows_by_slot,
            "explored_clicks_by_slot": self.clicks_by_slot,
        }
        return record | ({"why": why} if why else {})
