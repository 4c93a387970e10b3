"""The load generator's schedule and histogram (the open-loop run itself is exercised by the bench test)."""

from __future__ import annotations

import math

import pytest

from clients.histogram import LatencyHistogram
from clients.loadgen import schedule


def test_schedules() -> None:
    constant = schedule(100, 2.0, "constant")
    assert len(constant) == 200 and constant[1] - constant[0] == pytest.approx(0.01)
    poisson = schedule(1000, 5.0, "poisson", seed=1)
    assert abs(len(poisson) - 5000) < 5 * math.sqrt(5000)
    assert poisson == sorted(poisson) and poisson[-1] < 5.0
    with pytest.raises(ValueError, match="constant or poisson"):
        schedule(1, 1, "bursty")


def test_histogram_percentiles_within_precision() -> None:
    histogram = LatencyHistogram(precision=0.01)
    for value in range(1, 10_001):
        histogram.record(float(value))
    for q, exact in ((50, 5000), (90, 9000), (99, 9900), (99.9, 9990)):
        assert histogram.percentile(q) == pytest.approx(exact, rel=0.011)
    other = LatencyHistogram()
    other.record(50_000.0)
    histogram.merge(other)
    assert histogram.count == 10_001 and histogram.percentile(100) == 50_000.0
    assert math.isnan(LatencyHistogram().percentile(50))
