"""``counted``: a count with its noun, singular for 1 alone ("1 rows", "1 examples in 1 files" read wrong)."""

from __future__ import annotations

import pytest

from common.plural import counted, the_first


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((1, "row"), "1 row"),
        ((0, "row"), "0 rows"),
        ((2, "row"), "2 rows"),
        ((1, "process", "processes"), "1 process"),
        ((3, "process", "processes"), "3 processes"),
        ((-1, "row"), "-1 rows"),
    ],
)
def test_singular_for_one_alone(args: tuple, said: str) -> None:
    assert counted(*args) == said


def test_the_count_is_formatted_by_the_spec() -> None:
    assert counted(1200, "impression", spec=",") == "1,200 impressions"
    assert counted(1, "impression", spec=",") == "1 impression"


@pytest.mark.parametrize(("count", "said"), [(1, "1 row (row 7)"), (3, "3 rows (the first, row 7)")])
def test_the_first_is_said_only_where_there_are_more(count: int, said: str) -> None:
    assert f"{counted(count, 'row')} ({the_first(count)}row 7)" == said
