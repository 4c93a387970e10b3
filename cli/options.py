"""Options that take a comma-separated list of numbers (``--lambdas 0,0.9``, ``--rates 1000,2000``).

A value that is not a number of the kind asked ends the command with one line naming the option and
the value (cli/errors.py), where ``float("abc")`` alone said only "could not convert string to float".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)


def numbers(text: str, kind: Callable[[str], Number], option: str) -> tuple[Number, ...]:
    """The values of ``text`` (comma-separated) as ``kind``; ValueError naming ``option`` otherwise."""
    values = []
    for part in text.split(","):
        try:
            values.append(kind(part.strip()))
        except ValueError:
            what = "integers" if kind is int else "numbers"
            raise ValueError(f"{option} takes comma-separated {what}; {part.strip()!r} is not one") from None
    return tuple(values)
