"""The ``random`` pipeline's allocation: a uniformly random order of a request's eligible candidates, the first S
shown, each paying the reserve per click.

    allocation = run_uniform(bid, pctr, n_slots, reserve, uniform_draws(world_seed, seed, day, bid.shape))

Eligible as in GSP (``gsp.eligible``: bid >= reserve, bid > 0, pCTR > 0, finite), then ordered by uniform numbers of
a stream of its own, keyed by (world seed, seed, day) apart from the traffic's and the advertisers'
(``UNIFORM_STREAM``): the same order in any run of the seed, and no other pipeline's draw moved by adding it to a run.

**Price: the reserve.** The order ignores the bid above eligibility, so any bid >= the reserve gets the same slot
(the same uniform number decides it); the critical bid, the lowest at which the ad is still shown where it is, is the
reserve, and paying it per click is the threshold price of this allocation rule (truthful, as with any monotone rule
charging the critical bid). It never exceeds the bid: an eligible bid is at least the reserve.

**Propensity.** A uniformly random order of n eligible candidates puts each one in each of the first min(n, S) slots
with probability 1 / n; the shown rows carry it (``Allocation.propensity``), so the logs are an exploration set with
known propensities (the world's own ``uniform`` logging policy has 1 / K: training/world/policy.py).
"""

from __future__ import annotations

import numpy as np

from clients.auction.gsp import Allocation, check_auction, eligible

UNIFORM_STREAM = 18  # keys the random pipeline's order apart from the traffic's (16) and the advertisers' (17)


def uniform_draws(world_seed: int, seed: int, day: int, shape: tuple[int, ...]) -> np.ndarray:
    """(R, K) uniform numbers of the random pipeline's ``day`` of ``seed``: the same in every run of the seed."""
    return np.random.default_rng(np.random.SeedSequence([world_seed, UNIFORM_STREAM, seed, day])).random(shape)


def run_uniform(bid: np.ndarray, pctr: np.ndarray, n_slots: int, reserve: float, draws: np.ndarray) -> Allocation:
    """The first ``n_slots`` of the eligible candidates ordered by ``draws`` (R, K), highest first; each shown ad pays
    ``reserve`` per click and carries its propensity, 1 / (eligible candidates of its request)."""
    check_auction(bid, pctr, n_slots, reserve)
    if draws.shape != bid.shape:
        raise ValueError(f"draws must be (R, K) as bid, got {draws.shape} and {bid.shape}")
    allowed = eligible(bid, pctr, reserve)
    score = np.where(allowed, draws, -np.inf)
    if score.shape[1] < n_slots:
        score = np.pad(score, ((0, 0), (0, n_slots - score.shape[1])), constant_values=-np.inf)
    order = np.argsort(-score, axis=1, kind="stable")[:, :n_slots]  # (R, S)
    shown = np.isfinite(np.take_along_axis(score, order, axis=1))
    n_eligible = allowed.sum(axis=1, keepdims=True)  # (R, 1)
    return Allocation(
        winners=np.where(shown, order, -1),
        price=np.where(shown, reserve, 0.0),
        propensity=np.where(shown, 1.0 / np.maximum(n_eligible, 1), 0.0),
    )
