"""A position bypass started from the training log: its term fitted to each slot's logged click log-odds.

Built, the bypass's term w . act(a z + c0) (z: b standardised) has random weights: with the trainer's seed 0, the
adversarial `ctr` model's untrained slot ratios on the auction's windows were 1, 1.19, 1.23 on average (the lower
slots *above* the top), and seeds 1-4 drew 0.60-1.08 at slot 2 (reports/auction_slot_ratios.json). On a 10,800-row
window (85 Adam steps at batch 128) training moves the ratios only part of the way from that start: the served
ratios followed the seed's start, not the data (docs/auction.md, "Why the auction's published slot ratios are too
flat"). As ``fix_constants`` starts the offset c at the log-odds of the training CTR, this starts the bypass where
the log is: c + term(b_k) = logit(b_k) for each slot k (b_k is slot k's own CTR over the window), least squares
weighted by the slot's impressions; the features' part of the logit is then left to explain the rest. The hidden
layer's weight a and biases c0 are chosen from a small grid (several units spread evenly over c0 +- 1, so that they
differ), where the units work in their responsive range, and W_BY and c solved for exactly at each; the closest fit
is kept (three slots: exact, as far as the grid goes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training.position_ctr import listed_slots, position_ctr

CLAMP = 1e-4  # a slot without clicks (or without misses) is fitted at this rate, as the offset's start is


# the hidden layer's (a, shift of c0) tried; the pair whose least-squares fit is closest wins (the first of equals)
SCALES = (0.5, 1.0, 2.0)
SHIFTS = tuple(float(c) for c in np.linspace(-2.0, 2.0, 41))


@torch.no_grad()
def start_bypass_at_log(
    hidden: nn.Linear,
    activation: nn.Module,
    w_by: nn.Linear,
    b_mean: float,
    b_std: float,
    position: np.ndarray,
    b: np.ndarray,
) -> float:
    """Set the bypass's hidden layer (``hidden``, then ``activation``) and its output weights ``w_by`` so that
    offset + term(b_k) fits logit(b_k) over the slots of the rows (``position``, and ``b``: each row's position
    CTR, what the bypass reads); returns that offset (the logit at term 0). ``b_mean``, ``b_std``: the bypass's
    standardisation of b (set before)."""
    ctr = np.asarray(listed_slots(position_ctr(position, b)), dtype=np.float64)  # the mean b of each slot: its b
    counts = np.bincount(np.asarray(position, dtype=np.int64).reshape(-1))[1 : ctr.size + 1].astype(np.float64)
    clamped = np.clip(ctr, CLAMP, 1 - CLAMP)
    target = np.log(clamped / (1 - clamped))
    root = np.sqrt(counts / counts.sum())
    z = torch.tensor((ctr - b_mean) / b_std, dtype=torch.float32).unsqueeze(-1)
    units = hidden.out_features
    spread = torch.linspace(-1.0, 1.0, units) if units > 1 else torch.zeros(1)
    best = None
    for scale in SCALES:
        for shift in SHIFTS:
            hidden.weight.fill_(scale)
            hidden.bias.copy_(spread + shift)
            features = activation(hidden(z)).double().numpy()  # (slots, units)
            design = np.hstack([features, np.ones((ctr.size, 1))]) * root[:, None]
            solution, *_ = np.linalg.lstsq(design, target * root, rcond=None)  # minimum norm where underdetermined
            error = float(((design @ solution - target * root) ** 2).sum())
            if best is None or error < best[0] - 1e-12:
                best = (error, scale, shift, solution)
    _, scale, shift, solution = best
    hidden.weight.fill_(scale)
    hidden.bias.copy_(spread + shift)
    w_by.weight.copy_(torch.tensor(solution[:units], dtype=w_by.weight.dtype).reshape(1, units))
    return float(solution[units])
