"""training.evaluation.metrics.auc: what it refuses, and the AUC of bootstrap resamples from one sort
(``auc_of_resamples``), which must give each resample the value ``auc`` gives on its drawn rows."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.evaluation.evaluate_logs import _with_interval
from training.evaluation.metrics import auc, auc_of_resamples


def pairs_ordered_right(labels: np.ndarray, scores: np.ndarray) -> Fraction:
    """Brute force: the share of (positive, negative) pairs the scores order right, a tie counting half."""
    positive, negative = scores[labels.astype(bool)], scores[~labels.astype(bool)]
    twice = sum(2 * int(p > n) + int(p == n) for p in positive for n in negative)
    return Fraction(twice, 2 * positive.size * negative.size)


@pytest.mark.parametrize(
    "scores",
    [[0.1, np.nan, 0.2, 0.9, 0.3, 0.5], [0.1, np.inf, 0.2, 0.9, 0.3, 0.5], [0.1, 0.4, -np.inf, 0.9, 0.3, 0.5]],
)
def test_a_score_that_is_not_finite_is_refused(scores: list[float]) -> None:
    """NaN has no rank (it gave 0.5556 for these rows) and two rows at +inf were ranked apart (1.0, not 0.5)."""
    with pytest.raises(ValueError, match="1 of 6 are NaN or infinite"):
        auc(np.array([0, 0, 1, 1, 0, 1]), np.array(scores))


@pytest.mark.parametrize("labels", [[0, 2, 0, 1], [0, 0.5, 0, 1], [0, np.nan, 0, 1], [-1, 1, 0, 1]])
def test_a_label_other_than_0_or_1_is_refused(labels: list[float]) -> None:
    """A 2 or a 0.5 was counted as a click."""
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        auc(np.array(labels), np.array([0.1, 0.9, 0.2, 0.8]))


def test_booleans_and_0_1_of_any_dtype_are_labels() -> None:
    scores = np.array([0.1, 0.9, 0.2, 0.8])
    for labels in ([False, True, False, True], [0, 1, 0, 1], [0.0, 1.0, 0.0, 1.0]):
        assert auc(np.array(labels), scores) == 1.0
    assert np.isnan(auc(np.zeros(3), np.arange(3.0)))  # one class: no AUC, not an error


scored_rows = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.1, 0.2, 0.25, 0.5, 0.9]) | st.floats(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, n - 1), min_size=n, max_size=n),
    )
)


@settings(max_examples=300)
@given(scored_rows)
def test_a_resample_s_auc_is_auc_of_its_drawn_rows_to_the_last_bit(case) -> None:
    """Scores drawn from few values, so that ties are common, within a resample (a row drawn twice) and across."""
    labels, scores, rows = (np.array(values) for values in case)
    drawn = auc(labels[rows], scores[rows])
    of_resample = auc_of_resamples(labels, scores)(rows)
    assert of_resample == drawn or (np.isnan(of_resample) and np.isnan(drawn))
    if labels.any() and not labels.all():
        assert auc(labels, scores) == float(pairs_ordered_right(labels, scores))


def test_the_bootstrap_interval_of_the_auc_is_the_one_a_sort_per_resample_gave() -> None:
    """The same draws of the same generator: the interval does not move."""
    rng = np.random.default_rng(0)
    labels, scores = rng.random(2000) < 0.1, np.round(rng.random(2000), 2)
    sorted_once = _with_interval(auc, labels, scores, np.random.default_rng(1), 50, None, auc_of_resamples)
    sorted_each_time = _with_interval(auc, labels, scores, np.random.default_rng(1), 50)
    assert sorted_once == sorted_each_time and sorted_once["ci95"][0] < sorted_once["ci95"][1]


def test_labels_and_scores_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="AUC of 3 labels and 2 scores"):
        auc(np.array([0, 1, 1]), np.array([0.1, 0.2]))
