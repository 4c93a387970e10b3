"""Position CTR, P(click | position = p): the bias summary b of Moore et al. 2018.

The CTR of each displayed position over a window of logs. Higher slots collect more clicks whatever
the ad, both because users examine them more and because the previous model put its best guesses
there; b per row is the CTR of the row's position over the training window.
"""

from __future__ import annotations

import numpy as np


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
        raise ValueError("the training logs have no position-1 impressions to fix b from")
    spread = max(float(b.std(ddof=1)), 1e-6) if b.size > 1 else 1.0
    return float(b[first][0]), float(b.mean()), spread


def position_ctr_per_row(position: np.ndarray, click: np.ndarray) -> np.ndarray:
    """(B,) float32: the CTR of each row's position over these same rows."""
    _, ctr, index = _by_position(position, click)
    return ctr[index].astype(np.float32)
