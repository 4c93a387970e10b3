"""Kinds of Arrow column the log readers, the spec inference and ``ctr score`` tell apart."""

from __future__ import annotations

import pyarrow as pa


def is_number(kind: pa.DataType) -> bool:
    """Integers, floats and decimals (a warehouse's DECIMAL(12, 2) price): numbers a numeric feature reads."""
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
