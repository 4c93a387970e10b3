"""Logging policies: how a request's candidates are ranked before the top slots are displayed.

- ``feedback``: yesterday's model, a smoothed per-ad CTR estimated from yesterday's logged
  impressions and clicks (clicks are position-biased, so the logs feed on themselves), times
  lognormal noise. With no yesterday (the first simulated day) it falls back to ``popularity``.
- ``popularity``: the ad's popularity times lognormal noise.
- ``uniform``: a uniformly random order: an unbiased held-out set, with a known propensity.
"""

from __future__ import annotations

import numpy as np

from training.world.config import POLICIES, WorldConfig


class FeedbackModel:
    """Per-ad CTR estimate (clicks + k * m) / (impressions + k): a Beta prior with mean m, the
    day's overall CTR, and strength k pseudo-impressions. It ignores position, as a naive model would.
    """

    def __init__(self, n_ads: int, prior_strength: float) -> None:
        self.n_ads = n_ads
        self.prior_strength = prior_strength
        self.estimate: np.ndarray | None = None  # (A,) after fit

    def fit(self, ads: np.ndarray, clicks: np.ndarray) -> FeedbackModel:
        impressions = np.bincount(ads.ravel(), minlength=self.n_ads).astype(np.float64)
        clicked = np.bincount(ads.ravel(), weights=clicks.ravel().astype(np.float64), minlength=self.n_ads)
        prior_mean = clicked.sum() / max(impressions.sum(), 1.0)
        k = self.prior_strength
        self.estimate = (clicked + k * prior_mean) / (impressions + k)
        return self

    @property
    def is_fitted(self) -> bool:
        return self.estimate is not None


def check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")


def _lognormal_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    return np.exp(rng.normal(0.0, sigma, shape)) if sigma > 0 else np.ones(shape)


def score_candidates(
    policy: str,
    candidates: np.ndarray,
    rng: np.random.Generator,
    popularity: np.ndarray,
    config: WorldConfig,
    model: FeedbackModel | None = None,
) -> np.ndarray:
    """(R, K) ranking scores of the candidate ads (R, K) under ``policy``; higher ranks first."""
    check_policy(policy)
    if policy == "uniform":
        return rng.random(candidates.shape)
    if policy == "feedback" and model is not None and model.is_fitted:
        return model.estimate[candidates] * _lognormal_noise(rng, candidates.shape, config.feedback_noise)
    return popularity[candidates] * _lognormal_noise(rng, candidates.shape, config.popularity_noise)


def display(scores: np.ndarray, n_slots: int) -> np.ndarray:
    """(R, n_slots) column indices of the top-scored candidates, best first (slot 1 first)."""
    top = np.argpartition(-scores, n_slots - 1, axis=1)[:, :n_slots]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def uniform_propensity(config: WorldConfig) -> float:
    """P(a given candidate is displayed in a given slot) under a uniformly random order: 1 / K."""
    return 1.0 / config.n_candidates
