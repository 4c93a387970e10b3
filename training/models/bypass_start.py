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

``bypass_start = "explored"`` fits the same term to targets whose differences between slots are the explored rows'
(those logged in a random order) and whose level is the log's: training/models/explored_start.py, with its fallback
to this log start where the window holds too few explored clicks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from training.models.explored_start import ExploredSlots
from training.position_ctr import listed_slots, position_ctr

logger = logging.getLogger(__name__)

CLAMP = 1e-4  # a slot without clicks (or without misses) is fitted at this rate, as the offset's start is


# the hidden layer's (a, shift of c0) tried; the pair whose least-squares fit is closest wins (the first of equals)
SCALES = (0.5, 1.0, 2.0)
SHIFTS = tuple(float(c) for c in np.linspace(-2.0, 2.0, 41))


@dataclass(frozen=True)
class SlotTargets:
    """What a start fits, at each listed slot k (1, 2, ...): offset + term(``b[k - 1]``) to ``logit[k - 1]``, least
    squares weighted by ``weight`` (the slot's training rows)."""

    b: np.ndarray  # the slot's b, the bypass's input there: its click rate over the whole log
    logit: np.ndarray
    weight: np.ndarray


def log_targets(position: np.ndarray, b: np.ndarray) -> SlotTargets:
    """The log start's: each slot's own click log-odds over the rows (``position``, and ``b``: each row's position
    CTR, what the bypass reads)."""
    ctr = np.asarray(listed_slots(position_ctr(position, b)), dtype=np.float64)  # the mean b of each slot: its b
    counts = np.bincount(np.asarray(position, dtype=np.int64).reshape(-1))[1 : ctr.size + 1].astype(np.float64)
    clamped = np.clip(ctr, CLAMP, 1 - CLAMP)
    return SlotTargets(ctr, np.log(clamped / (1 - clamped)), counts)


def explored_targets(log: SlotTargets, explored: ExploredSlots) -> SlotTargets:
    """The explored start's: the explored rows' click rate at each slot, all scaled by one factor so that their mean
    over the training rows (each slot weighted by its rows) is the log's: the slots' ratios to slot 1 are the
    explored rows', the click rate the whole log's."""
    rates = explored.rates()
    scaled = np.clip(rates * float(log.weight @ log.b) / float(log.weight @ rates), CLAMP, 1 - CLAMP)
    return SlotTargets(log.b, np.log(scaled / (1 - scaled)), log.weight)


def start_targets(start: str, tensors: dict[str, torch.Tensor]) -> tuple[SlotTargets, dict[str, Any] | None]:
    """The targets of ``start`` ("log" or "explored") over the training rows ``tensors``, and for "explored" the
    record of the start used (model.json's ``training.bypass_start``): the log's, with a warning saying why, where
    the explored rows are too few (``ExploredSlots.too_few``)."""
    log = log_targets(tensors["position"].numpy(), tensors["b"].numpy())
    if start == "log":
        return log, None
    explored = ExploredSlots.of(tensors, log.b.size)
    why = explored.too_few()
    if why is None:
        return explored_targets(log, explored), explored.record("explored", None)
    logger.warning(
        'bypass_start = "explored": %s; the bypass starts from every training row\'s slot click rates instead '
        '(as bypass_start = "log"), as model.json\'s training.bypass_start records',
        why,
    )
    return log, explored.record("log", why)


@torch.no_grad()
def start_bypass(
    start: str,
    hidden: nn.Linear,
    activation: nn.Module,
    w_by: nn.Linear,
    b_mean: float,
    b_std: float,
    tensors: dict[str, torch.Tensor],
) -> tuple[float, dict[str, Any] | None]:
    """Start the bypass at ``start``'s targets over the training rows ``tensors`` (``start_targets``, ``fit_bypass``);
    (the offset that goes with it, the record of the start used or None)."""
    targets, record = start_targets(start, tensors)
    return fit_bypass(hidden, activation, w_by, b_mean, b_std, targets), record


@torch.no_grad()
def fit_bypass(
    hidden: nn.Linear, activation: nn.Module, w_by: nn.Linear, b_mean: float, b_std: float, targets: SlotTargets
) -> float:
    """Set the bypass's hidden layer (``hidden``, then ``activation``) and its output weights ``w_by`` so that
    offset + term(b_k) fits the ``targets``; returns that offset (the logit at term 0). ``b_mean``, ``b_std``: the
    bypass's standardisation of b (set before)."""
    root = np.sqrt(targets.weight / targets.weight.sum())
    slots = targets.b.size
    z = torch.tensor((targets.b - b_mean) / b_std, dtype=torch.float32).unsqueeze(-1)
    units = hidden.out_features
    spread = torch.linspace(-1.0, 1.0, units) if units > 1 else torch.zeros(1)
    best = None
    for scale in SCALES:
        for shift in SHIFTS:
            hidden.weight.fill_(scale)
            hidden.bias.copy_(spread + shift)
            features = activation(hidden(z)).double().numpy()  # (slots, units)
            design = np.hstack([features, np.ones((slots, 1))]) * root[:, None]
            solution, *_ = np.linalg.lstsq(design, targets.logit * root, rcond=None)  # minimum norm if underdetermined
            error = float(((design @ solution - targets.logit * root) ** 2).sum())
            if best is None or error < best[0] - 1e-12:
                best = (error, scale, shift, solution)
    _, scale, shift, solution = best
    hidden.weight.fill_(scale)
    hidden.bias.copy_(spread + shift)
    w_by.weight.copy_(torch.tensor(solution[:units], dtype=w_by.weight.dtype).reshape(1, units))
    return float(solution[units])
