"""A TOML table is checked against its dataclass: keys, types, and what to write instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from common.config_table import built, checked_table


@dataclass
class Example:
    name: str
    count: int = 1
    rate: float = 0.5
    on: bool = False
    widths: list[int] = field(default_factory=lambda: [4])
    pair: tuple[float, float] = (0.0, 1.0)
    shares: tuple[float, ...] = (1.0,)
    side: Literal["context", "candidate"] = "context"
    default: str | float | None = None

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, not {self.count}")


def test_values_of_their_types_pass_an_integer_as_a_number_a_list_as_a_tuple():
    values = {"name": "a", "count": 2, "rate": 1, "on": True, "widths": [1, 2], "pair": [1, 2.5], "shares": [1, 0]}
    assert checked_table(Example, values | {"side": "candidate", "default": 3}, "[example]") == values | {
        "side": "candidate",
        "default": 3,
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate": "0.01"}, '[example] rate = "0.01": expected a number, not a string (write it without quotes)'),
        ({"on": "false"}, '[example] on = "false": expected true or false, not a string (write it without quotes)'),
        ({"on": 1}, "[example] on = 1: expected true or false, not an integer"),
        ({"count": 1.5}, "[example] count = 1.5: expected an integer, not a number with a fraction"),
        ({"count": True}, "[example] count = true: expected an integer, not a boolean"),
        ({"widths": 16}, "[example] widths = 16: expected a list of integers, not an integer"),
        ({"widths": [16, "8"]}, '[example] widths = [16, "8"]: expected a list of integers, not a list'),
        ({"pair": [1.0]}, "[example] pair = [1.0]: expected a list of 2 numbers, not a list"),
        # the value is text, as a choice is: "not a string" read as if quotes were the mistake
        ({"side": "both"}, '[example] side = "both": expected one of "context", "candidate"'),
        (
            {"side": "candiate"},
            '[example] side = "candiate": expected one of "context", "candidate" (did you mean "candidate"?)',
        ),
        ({"side": 1}, '[example] side = 1: expected one of "context", "candidate", not an integer'),
        ({"default": [1]}, "[example] default = [1]: expected a string or a number, not a list"),
    ],
)
def test_a_wrong_value_names_the_table_the_key_the_value_and_the_type_wanted(values, message):
    with pytest.raises(ValueError) as raised:
        checked_table(Example, {"name": "x", **values}, "[example]")
    assert str(raised.value) == message


def test_a_missing_required_key_is_named():
    with pytest.raises(ValueError, match=r"^\[example\] lacks \['name'\]$"):
        checked_table(Example, {"count": 2}, "[example]")


def test_an_unknown_key_is_named_with_the_nearest_known_one():
    with pytest.raises(
        ValueError, match=r"^\[example\] settings \['widht'\] are unknown \(did you mean 'widths'\?\); "
    ):
        checked_table(Example, {"name": "x", "widht": [3]}, "[example]")
    with pytest.raises(ValueError, match=r"are not esmm settings \(did you mean 'count' instead of 'cuont', 'rate'"):
        checked_table(Example, {"name": "x", "cuont": 3, "rtae": 1.0}, "[model]", owner="esmm")
    with pytest.raises(ValueError, match=r"\['zzz'\] are unknown; known: \["):  # nothing near: no guess
        checked_table(Example, {"name": "x", "zzz": 3}, "[example]")


def test_a_section_that_is_not_a_table_is_said_so():
    with pytest.raises(ValueError, match=r"^\[example\] must be a table of settings, not 5 \(an integer\)$"):
        checked_table(Example, 5, "[example]")


def test_built_names_the_table_before_a_range_the_dataclass_refuses():
    assert built(Example, {"name": "x", "count": 0}, "[example]") == Example("x", count=0)
    with pytest.raises(ValueError, match=r"^\[example\] count must be >= 0, not -1$"):
        built(Example, {"name": "x", "count": -1}, "[example]")
