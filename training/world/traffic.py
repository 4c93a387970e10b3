"""Request traffic: who asks, when, and which candidate ads the retrieval stage hands over.

A request is a user (drawn by activity), a second of the day (more traffic around ``peak_hour``),
and ``n_candidates`` distinct ads drawn by Zipf popularity, without replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.world.config import WorldConfig
from training.world.population import Population

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Requests:
    user: np.ndarray  # (R,) int64 user index
    second: np.ndarray  # (R,) int64 second of the day, sorted ascending
    hour: np.ndarray  # (R,) int64 hour of the day, 0..23
    candidates: np.ndarray  # (R, K) int64 distinct ad indices, in draw order

    def __len__(self) -> int:
        return len(self.user)


def hour_weights(config: WorldConfig) -> np.ndarray:
    """(24,) share of the day's traffic in each hour."""
    hours = np.arange(24)
    weights = 1.0 + config.diurnal_amplitude * np.cos(2.0 * np.pi * (hours - config.peak_hour) / 24.0)
    return weights / weights.sum()


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0  # exact, so that a uniform draw never falls past the end
    return cdf


def _first_occurrences(draws: np.ndarray) -> np.ndarray:
    """(R, M) bool: True where a value appears in its row for the first time."""
    order = np.argsort(draws, axis=1, kind="stable")
    ordered = np.take_along_axis(draws, order, axis=1)
    first_sorted = np.ones(draws.shape, dtype=bool)
    first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    return first


def sample_distinct(rng: np.random.Generator, weights: np.ndarray, n_rows: int, k: int) -> np.ndarray:
    """(n_rows, k) distinct indices per row, drawn with probability proportional to ``weights``
    without replacement (successive sampling).

    Draws with replacement and keeps the first ``k`` distinct values of each row, which is exactly
    successive sampling; rows that hold fewer than ``k`` distinct values get more draws appended.
    """
    if k > np.count_nonzero(weights):
        raise ValueError(f"cannot draw {k} distinct items from {np.count_nonzero(weights)} with weight > 0")
    cdf = _cdf(weights)
    out = np.empty((n_rows, k), dtype=np.int64)
    pending = np.arange(n_rows)
    draws = np.empty((0, 0), dtype=np.int64)
    batch = 2 * k
    while pending.size:
        fresh = np.searchsorted(cdf, rng.random((pending.size, batch)), side="right")
        draws = fresh if draws.size == 0 else np.concatenate([draws, fresh], axis=1)
        first = _first_occurrences(draws)
        done = first.sum(axis=1) >= k
        if done.any():
            keep = first[done] & (np.cumsum(first[done], axis=1) <= k)
            out[pending[done]] = draws[done][keep].reshape(-1, k)
        pending, draws = pending[~done], draws[~done]
        batch = draws.shape[1]  # double the draws of the rows still short of k distinct values
    return out


def sample_requests(
    rng: np.random.Generator, population: Population, config: WorldConfig, n: int, n_candidates: int
) -> Requests:
    """``n`` requests of one day, in time order."""
    user = np.searchsorted(_cdf(population.user_activity), rng.random(n), side="right")
    hour = np.searchsorted(_cdf(hour_weights(config)), rng.random(n), side="right")
    second = np.sort(hour * 3600 + rng.integers(0, 3600, n))
    candidates = sample_distinct(rng, population.ad_popularity, n, n_candidates)
    return Requests(user=user, second=second, hour=second // 3600, candidates=candidates)
