"""A count with its noun, singular for 1 and plural otherwise, for the lines the commands print and the
errors they raise: "1 rows", "1 examples in 1 files" read wrong."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None, spec: str = "") -> str:
    """``count`` formatted by ``spec`` (``","``: 1,200) and ``noun``, or ``plural`` (``noun`` + "s" unless given)
    where ``count`` is not 1: ``counted(1, "row")`` is "1 row", ``counted(3, "process", "processes")`` "3 processes"."""
    return f"{count:{spec}} {noun if count == 1 else plural or noun + 's'}"


def the_first(count: int) -> str:
    """What goes before the one of ``count`` things a message names: "the first, " where there are more, nothing
    where it is the only one ("3 rows (the first, row 7)", "1 row (row 7)": "1 row (the first, row 7)" read wrong)."""
    return "" if count == 1 else "the first, "
