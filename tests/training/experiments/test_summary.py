"""Every experiment's mean ± std: the sample standard deviation (ddof 1), none for one run, one format."""

from __future__ import annotations

import math

import pytest

from training.experiments.summary import mean_std, plus_minus


def test_the_std_is_the_sample_one_over_runs() -> None:
    summary = mean_std([1.0, 2.0, 4.0])
    assert summary["mean"] == pytest.approx(7 / 3)
    # sum of squared deviations 14/3 over n - 1 = 2 (the population std divided by 3: 0.82x this)
    assert summary["std"] == pytest.approx(math.sqrt(7 / 3))
    assert mean_std([0.5, 0.5]) == {"mean": 0.5, "std": 0.0}


def test_one_run_has_no_spread_to_estimate() -> None:
    assert mean_std([0.25]) == {"mean": 0.25, "std": None}


def test_plus_minus_writes_the_spread_only_where_there_is_one() -> None:
    assert plus_minus({"mean": 0.51387, "std": 0.09172}, 4) == "0.5139 ± 0.0917"
    assert plus_minus({"mean": 0.51387, "std": 0.09172}, 3, "±") == "0.514±0.092"
    assert plus_minus({"mean": 0.8626, "std": 0.0037}, 2, scale=100.0) == "86.26 ± 0.37"
    assert plus_minus({"mean": 0.25, "std": None}, 4) == "0.2500"
    assert plus_minus(mean_std([0.1, 0.3]), 2) == "0.20 ± 0.14"
