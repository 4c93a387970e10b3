"""The column types other writers choose (views, extension types, decimals of scale 0), read as the plain
types the checks and the encoder take."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# the plain type of each view type (polars' newest strings), by name: pyarrow < 16 has no view types
VIEW_TYPES = {"string_view": pa.string(), "binary_view": pa.binary()}


def plain_columns(table: pa.Table) -> pa.Table:
    """``table`` with the types other writers choose read as the plain types the checks and the encoder take:
    a view column (polars' newest strings) as a plain one, a ``uuid`` (DuckDB's) as its text, the form a
    request sends (``"6ba7b810-9dad-11d1-80b4-00c04fd430c8"``), another extension type as its storage, and a
    decimal of scale 0 (a warehouse's ``NUMBER(38, 0)`` ids and labels) as int64 where every value fits. A
    ``string_view`` feature was refused as "not a string", a ``uuid`` request id stopped the statistics with a
    traceback (a uuid feature was left out as bytes), and a decimal id was proposed as a numeric feature."""
    for i, field in enumerate(table.schema):
        column = _plain(table.column(i))
        if column.type != field.type:
            table = table.set_column(i, field.with_type(column.type), column)
    return table


_HEX = np.array([f"{byte:02x}" for byte in range(256)]).astype("S2").view(np.uint8).reshape(256, 2)
_UUID_DASHES = (8, 12, 16, 20)  # hex digits before each dash: 8-4-4-4-12


def _uuid_text(storage: pa.ChunkedArray) -> pa.ChunkedArray:
    """16-byte UUIDs as their canonical lower-case text, nulls kept (numpy: a million in a fraction of a second)."""
    chunks = []
    for chunk in storage.chunks:
        raw = np.frombuffer(chunk.buffers()[1], dtype=np.uint8)[chunk.offset * 16 : (chunk.offset + len(chunk)) * 16]
        digits = _HEX[raw.reshape(-1, 16)].reshape(-1, 32)
        text = np.ascontiguousarray(np.insert(digits, _UUID_DASHES, ord("-"), axis=1))  # (n, 36) ASCII bytes
        offsets = np.arange(0, 36 * (len(chunk) + 1), 36, dtype=np.int32)
        valid = chunk.is_valid().buffers()[1] if chunk.null_count else None  # bits from the first row (sliced too)
        buffers = [valid, pa.py_buffer(offsets), pa.py_buffer(text)]
        chunks.append(pa.Array.from_buffers(pa.string(), len(chunk), buffers, chunk.null_count))
    return pa.chunked_array(chunks, pa.string())


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if isinstance(kind, pa.BaseExtensionType):
        storage = pa.chunked_array([chunk.storage for chunk in column.chunks], kind.storage_type)
        return _uuid_text(storage) if kind.extension_name == "arrow.uuid" else _plain(storage)
    if str(kind) in VIEW_TYPES:
        return column.cast(VIEW_TYPES[str(kind)])
    if pa.types.is_decimal(kind) and kind.scale == 0:
        try:
            return column.cast(pa.int64())
        except pa.ArrowInvalid:  # past int64: a number, as a decimal with a fraction is
            return column
    return column
