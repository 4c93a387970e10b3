"""What a cell's value reads as, where a refusal or a hint asks: a number, UTF-8 text."""

from __future__ import annotations


def is_utf8(value: bytes, max_chars: int | None = None) -> bool:
    """Whether ``value`` is UTF-8 text (of at most ``max_chars`` characters, where given)."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return False
    return max_chars is None or len(text) <= max_chars


def reads_as_number(value: object) -> bool:
    """Whether ``float`` reads ``value`` as a number (a CSV cell, a column name, a label written as text)."""
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a date or a list of a column of another type: no number either
        return False
    return True
