"""Position CTR, P(click | position = p): the bias summary b of Moore et al. 2018.

The CTR of each displayed position over a window of logs. Higher slots collect more clicks whatever
the ad, both because users examine them more and because the previous model put its best guesses
there; b per row is the CTR of the row's position over the training log, its validation tail included (as
the numeric features' statistics are: fitted before the split; 4.2e-4 of validation AUC at most, docs/results.md).
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


class NoTopSlot(ValueError):
    """Rows without position 1, given to what fixes or reads a slot-1 model's constants: said with the two
    ways out, of "the training logs" or, by a trainer, of the rows it names (``said_of``)."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(self.said_of("the training logs"))

    def said_of(self, rows: str) -> str:
        return (
            f"{rows} hold no position-1 impression {self.why}: number the top slot 1 in the logs, or train a "
            "position-blind kind such as esmm"
        )


def _by_position(position: np.ndarray, click: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions present, their CTRs, each row's index into them)."""
    position = np.asarray(position).astype(np.int64).reshape(-1)
    click = np.asarray(click).astype(np.float64).reshape(-1)
    if position.shape != click.shape:
        raise ValueError(f"position and click differ in length: {position.size} and {click.size}")
    slots, index = np.unique(position, return_inverse=True)
    ctr = np.bincount(index, weights=click, minlength=slots.size) / np.bincount(index, minlength=slots.size)
    return slots, ctr, index


def position_ctr(position: np.ndarray, click: np.ndarray) -> dict[int, float]:
    """{position: clicks / impressions} over the rows given, for each position that occurs."""
    slots, ctr, _ = _by_position(position, click)
    return {int(p): float(c) for p, c in zip(slots, ctr, strict=True)}


def bias_constants(position: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(b at slot 1, mean b, spread of b) over training rows: what a bypass fixes at export and
    standardises b by. ValueError when no row was shown at position 1."""
    position = np.asarray(position).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    first = position == 1
    if not first.any():
        raise NoTopSlot("to fix b from (the CTR a slot-1 model serves for)")
    spread = max(float(b.std(ddof=1)), 1e-6) if b.size > 1 else 1.0
    return float(b[first][0]), float(b.mean()), spread


def position_ctr_per_row(position: np.ndarray, click: np.ndarray) -> np.ndarray:
    """(B,) float32: the CTR of each row's position over these same rows."""
    _, ctr, index = _by_position(position, click)
    return ctr[index].astype(np.float32)


def listed_slots(slots: dict[int, float]) -> list[float]:
    """The position CTRs of slots 1, 2, ... up to the first slot without an impression: ``ctr_ratios[k - 1]``
    is slot k's (the ratios of the positions that occurred, listed in order, put slot 4's where slot 3's is
    read once slot 3 was missing, and a position 1000 in slot 6's place). ValueError without slot 1."""
    if 1 not in slots:
        raise NoTopSlot("for a slot-1 model to hold for")
    listed = []
    while len(listed) + 1 in slots:
        listed.append(slots[len(listed) + 1])
    past = sorted(slot for slot in slots if slot > len(listed))
    if past:
        logger.warning(
            "position %d has no impression in the training logs: model.json lists the CTR ratios of slots 1-%d, "
            "none for positions %s",
            len(listed) + 1,
            len(listed),
            past if len(past) <= 10 else f"{past[:10]} and {len(past) - 10} more",
        )
    return listed
