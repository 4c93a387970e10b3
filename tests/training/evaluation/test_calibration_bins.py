"""Equal-count bins of a prediction (training/evaluation/metrics.py): the calibration error, the reliability
diagrams of ``ctr evaluate serving`` and ``--logs`` and the CVR experiment's curves all bin with them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from training.evaluation.metrics import binned_means, equal_count_bins, expected_calibration_error
from training.evaluation.serving_calibration import reliability
from training.experiments.cvr import calibration_curve


def test_bins_hold_consecutive_predictions_the_first_ones_one_more() -> None:
    predicted = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8])
    chunks = equal_count_bins(predicted, 3)
    assert [c.size for c in chunks] == [3, 2, 2]  # 7 = 3 + 2 + 2
    assert [predicted[c].tolist() for c in chunks] == [[0.1, 0.2, 0.3], [0.5, 0.7], [0.8, 0.9]]


def test_tied_predictions_share_a_bin_and_empty_bins_are_dropped() -> None:
    """The boundary after [0.2, 0.5] falls inside the run of 0.5s: it moves to its end, leaving one bin."""
    assert [c.tolist() for c in equal_count_bins(np.array([0.5, 0.2, 0.5, 0.5]), 2)] == [[1, 0, 2, 3]]
    assert [c.tolist() for c in equal_count_bins(np.array([0.2, 0.5, 0.2, 0.7, 0.7, 0.9]), 3)] == [
        [0, 2],
        [1, 3, 4],
        [5],
    ]
    assert [c.tolist() for c in equal_count_bins(np.array([0.3, 0.1]), 4)] == [[1], [0]]  # fewer rows than bins
    assert equal_count_bins(np.array([]), 4) == []


def test_with_distinct_predictions_the_bins_are_the_even_split_of_the_sorted_rows() -> None:
    rng = np.random.default_rng(0)
    for size, bins in ((1003, 20), (7, 3), (5, 20), (40, 40)):
        predicted = rng.random(size)
        even = [c for c in np.array_split(np.argsort(predicted), bins) if c.size]
        assert [c.tolist() for c in equal_count_bins(predicted, bins)] == [c.tolist() for c in even]


def test_with_tied_predictions_the_calibration_error_does_not_depend_on_the_row_order() -> None:
    """A constant prediction: its ECE is the gap of the means whatever the order (it was 0.0029-0.0039 over row
    orders and 0.0694 with the rows sorted by truth); four distinct values: each keeps its rows together."""
    rng = np.random.default_rng(0)
    true = rng.beta(1, 9, 10_000)
    constant = np.full(10_000, 0.1)
    gap = abs(constant.mean() - true.mean())
    for order in (np.arange(10_000), np.argsort(true), rng.permutation(10_000)):
        assert expected_calibration_error(constant[order], true[order]) == pytest.approx(gap, rel=1e-9)
    few = rng.integers(0, 4, 10_000) * 0.05 + 0.05
    errors = [expected_calibration_error(few[o], true[o]) for o in (np.lexsort((true, few)), rng.permutation(10_000))]
    assert errors[0] == pytest.approx(errors[1], rel=1e-9)


def test_tied_predictions_keep_their_order_in_a_long_array() -> None:
    """numpy sorts up to 16 values by insertion (stable whatever the kind); past that a quicksort reorders ties,
    and the calibration bins of tied predictions (a constant model) would depend on it."""
    predicted = np.tile([0.5, 0.2], 20)
    low, high = equal_count_bins(predicted, 2)
    assert low.tolist() == list(range(1, 40, 2)) and high.tolist() == list(range(0, 40, 2))


def test_binned_means_are_each_bins_mean_in_the_arrays_own_precision() -> None:
    predicted = np.array([0.4, 0.1, 0.3, 0.2], dtype=np.float32)
    reference = np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32)
    x, y = binned_means(predicted, reference, 2)
    assert x == [float(np.float32([0.1, 0.2]).mean()), float(np.float32([0.3, 0.4]).mean())]
    assert y == [0.5, 0.5]


def test_the_calibration_error_weights_each_bins_gap_by_its_size() -> None:
    predicted = np.array([0.1, 0.2, 0.3, 0.6, 0.8])
    true = np.array([0.1, 0.1, 0.1, 0.5, 0.5])
    # bins {0.1, 0.2, 0.3} and {0.6, 0.8}: |0.2 - 0.1| x 3 + |0.7 - 0.5| x 2, over 5 rows
    assert expected_calibration_error(predicted, true, bins=2) == pytest.approx((0.1 * 3 + 0.2 * 2) / 5)
    assert expected_calibration_error(predicted, true, bins=20) == pytest.approx(np.abs(predicted - true).mean())
    assert np.isnan(expected_calibration_error(np.array([]), np.array([])))


def test_the_reliability_diagrams_and_curves_are_the_binned_means() -> None:
    rng = np.random.default_rng(0)
    predicted, true = rng.random(1003), rng.random(1003)
    x, y = binned_means(predicted, true, 10)
    assert reliability(predicted, true, 10) == {"served": x, "true": y}
    assert calibration_curve(predicted, true, 10) == {"predicted": x, "true": y}
    assert x == sorted(x) and len(x) == 10


def test_fewer_rows_than_bins_give_a_point_per_row_without_an_empty_bin_s_nan() -> None:
    """The reliability diagrams and curves bin through ``binned_means``: with 3 rows and 10 bins they had 7 NaN
    points and numpy's 'Mean of empty slice' warnings."""
    predicted, true = np.array([0.3, 0.1, 0.2]), np.array([1.0, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reliability(predicted, true, 10) == {"served": [0.1, 0.2, 0.3], "true": [0.0, 0.0, 1.0]}
        assert calibration_curve(predicted, true, 10) == {"predicted": [0.1, 0.2, 0.3], "true": [0.0, 0.0, 1.0]}
        assert binned_means(np.array([]), np.array([]), 10) == ([], [])
