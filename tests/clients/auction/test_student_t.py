"""Student's t critical values against published tables, and the interval over seeds built with them."""

from __future__ import annotations

import numpy as np
import pytest

from clients.auction.report import ci95
from clients.auction.student_t import critical_value, two_sided_probability

# two-sided 95% (and 99%) values of Student's t, as printed in the usual tables
TABLE_95 = {1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 11: 2.201, 12: 2.179, 20: 2.086, 30: 2.042, 100: 1.984}
TABLE_99 = {1: 63.657, 4: 4.604, 11: 3.106, 60: 2.660}


@pytest.mark.parametrize(("df", "t"), TABLE_95.items())
def test_the_95_percent_values_are_the_table_s(df: int, t: float) -> None:
    assert critical_value(df) == pytest.approx(t, abs=6e-4)


@pytest.mark.parametrize(("df", "t"), TABLE_99.items())
def test_other_levels_too(df: int, t: float) -> None:
    assert critical_value(df, 0.99) == pytest.approx(t, abs=6e-4)


def test_the_probability_is_the_cauchy_s_for_one_degree_and_tends_to_the_normal_s() -> None:
    assert two_sided_probability(1.0, 1) == pytest.approx(0.5)  # Cauchy: P(|T| <= 1) = 1/2
    assert two_sided_probability(1.959964, 100_000) == pytest.approx(0.95, abs=1e-5)
    assert critical_value(100_000) == pytest.approx(1.95996, abs=1e-4)


def test_twelve_seeds_get_the_t_interval_not_the_normal_one() -> None:
    """From 12 seeds (11 degrees of freedom) the half-width used 1.96 standard errors, not 2.201."""
    values = list(np.arange(12, dtype=float))
    low, high = ci95(values)
    standard_error = np.std(values, ddof=1) / np.sqrt(12)
    assert (high - low) / 2 == pytest.approx(2.201 * standard_error, rel=2e-4)


def test_a_level_near_one_is_found_however_far_out_it_lies() -> None:
    """The bracket stopped at 10,000: P(|T| <= t) = 0.99999 at one degree of freedom is ~63,662."""
    assert critical_value(1, 0.99999) == pytest.approx(np.tan(np.pi * 0.99999 / 2), rel=1e-6)  # Cauchy


def test_a_level_outside_the_open_interval_is_refused() -> None:
    """A level of 0 has no critical value to find, and none of 1 or more is ever reached: the search for the
    bracket would double it forever (0 first: unchecked, it answers at once, without raising)."""
    for level in (0.0, -0.5, 1.0, 1.5):
        with pytest.raises(ValueError, match="0 < level < 1"):
            critical_value(5, level)
