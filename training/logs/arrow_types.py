"""Kinds of Arrow column the log readers, the spec inference and ``ctr score`` tell apart."""

from __future__ import annotations

import pyarrow as pa


def is_number(kind: pa.DataType) -> bool:
    """Integers, floats and decimals (a warehouse's DECIMAL(12, 2) price): numbers a numeric feature reads."""
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def is_text(kind: pa.DataType) -> bool:
    """Arrow's two text types, whichever a log holds: ``large_string`` (64-bit offsets) is also what a cast of
    a bytes column to text gives (spec inference reads UTF-8 bytes so)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def is_groupable(kind: pa.DataType) -> bool:
    """A column type Arrow's ``group_by`` takes as a key: numbers, booleans, text, bytes and times (the
    duplicate check's columns; a list or a struct is left out of it)."""
    others = (pa.types.is_boolean, pa.types.is_binary, pa.types.is_large_binary, pa.types.is_temporal)
    return is_number(kind) or is_text(kind) or any(check(kind) for check in others)
