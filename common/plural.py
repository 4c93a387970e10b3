"""A count with its noun, singular for 1 and plural otherwise, for the lines the commands print and the
errors they raise: "1 rows", "1 examples in 1 files" read wrong."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None, spec: str = "") -> str:
    """``count`` formatted by ``spec`` (``","``: 1,200) and ``noun``, or ``plural`` (``noun`` + "s" unless given)
    where ``count`` is not 1: ``counted(1, "row")`` is "1 row", ``counted(3, "process", "processes")`` "3 processes"."""
    return f"{count:{spec}} {noun if count == 1 else plural or noun + 's'}"
