"""Candidate sampling without replacement, the display ranking and the feedback model."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from training.world.config import WorldConfig
from training.world.policy import FeedbackModel, display, score_candidates
from training.world.traffic import hour_weights, sample_distinct


@settings(max_examples=30)
@given(
    n_items=st.integers(1, 40),
    k_share=st.floats(0.0, 1.0),
    rows=st.integers(1, 50),
    skew=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_sample_distinct_rows_are_distinct_and_in_range(
    n_items: int, k_share: float, rows: int, skew: float, seed: int
) -> None:
    k = max(1, round(k_share * n_items))
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -skew
    draws = sample_distinct(np.random.default_rng(seed), weights / weights.sum(), rows, k)
    assert draws.shape == (rows, k)
    assert draws.min() >= 0 and draws.max() < n_items
    assert all(len(set(row)) == k for row in draws.tolist())


def test_sample_distinct_is_successive_sampling() -> None:
    weights = np.array([0.5, 0.3, 0.2])
    draws = sample_distinct(np.random.default_rng(0), weights, 200_000, 2)
    # first draw ~ weights; the second ~ weights renormalised over the rest
    np.testing.assert_allclose(np.bincount(draws[:, 0], minlength=3) / len(draws), weights, atol=0.005)
    second_after_0 = np.bincount(draws[draws[:, 0] == 0, 1], minlength=3)
    np.testing.assert_allclose(second_after_0[1:] / second_after_0.sum(), [0.6, 0.4], atol=0.01)


def test_display_orders_the_top_slots_best_first() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [4.0, 3.0, 2.0, 1.0]])
    assert display(scores, 2).tolist() == [[1, 3], [0, 1]]
    assert display(scores, 4).tolist() == [[1, 3, 2, 0], [0, 1, 2, 3]]


def test_feedback_model_smooths_towards_the_day_ctr() -> None:
    ads = np.array([0, 0, 0, 0, 1])
    clicks = np.array([1, 1, 1, 1, 0])
    model = FeedbackModel(n_ads=3, prior_strength=5.0).fit(ads, clicks)
    prior = 4 / 5
    np.testing.assert_allclose(model.estimate, [(4 + 5 * prior) / 9, (5 * prior) / 6, prior])


def test_feedback_policy_falls_back_to_popularity_before_it_is_fitted() -> None:
    config = WorldConfig()
    candidates = np.arange(6).reshape(2, 3)
    popularity = np.linspace(1.0, 0.1, 6)
    unfitted = FeedbackModel(6, 10.0)
    a = score_candidates("feedback", candidates, np.random.default_rng(0), popularity, config, unfitted)
    b = score_candidates("popularity", candidates, np.random.default_rng(0), popularity, config)
    np.testing.assert_array_equal(a, b)


def test_hour_weights_peak_at_peak_hour() -> None:
    weights = hour_weights(WorldConfig(peak_hour=20))
    assert np.isclose(weights.sum(), 1.0) and weights.argmax() == 20
