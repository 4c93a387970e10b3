"""The schema of a log's files unified as their tables are joined, and the refusal of files whose types
disagree."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from training.logs.plain_columns import VIEW_TYPES

WRITE_ALIKE = (
    "write them alike (one format, the same types; a CSV column of digits is read as numbers, but for a categorical "
    "feature's, which keeps its text, where Parquet keeps the type it was written with)"
)


def unified_schema(schemas: list[tuple[Path, pa.Schema]], what: str = "impression log") -> pa.Schema:
    """The schema of a log's files, unified as their tables are joined (permissive: a column of int32 in
    one and int64 in another is int64, one a file lacks is null there); ValueError naming the first file
    (as ``what``) whose column types disagree with the files' before it (it named the directory alone)."""
    schemas = [(file, decoded_schema(schema)) for file, schema in schemas]
    unified = schemas[0][1]
    for file, schema in schemas[1:]:
        try:
            _refuse_mixed_signs(unified, schema)
            unified = pa.unify_schemas([unified, schema], promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid) as error:  # a column read as text in one file, numbers in another
            raise ValueError(
                f"{what} {file} disagrees with {schemas[0][0]} (and the files before it) on a column's "
                f"type ({error}): {WRITE_ALIKE}"
            ) from None
    return unified


def decoded_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each dictionary-encoded column's type its values' (a column dictionary-encoded in one
    file, pandas' ``category``, and plain in another holds the same values: they join), and a view column's
    the plain type (``plain_columns``)."""
    for i, field in enumerate(schema):
        if pa.types.is_dictionary(field.type):
            schema = schema.set(i, field.with_type(field.type.value_type))
        if str(field.type) in VIEW_TYPES:
            schema = schema.set(i, field.with_type(VIEW_TYPES[str(field.type)]))
    return schema


def _refuse_mixed_signs(before: pa.Schema, schema: pa.Schema) -> None:
    """ArrowTypeError for an unsigned 64-bit integer column joined with another integer type: the permissive
    join reads both as int64, which values past 2**63 do not fit (it failed when a row group was read,
    naming no file)."""
    for field in schema:
        if field.name not in before.names:
            continue
        other = before.field(field.name).type
        integers = pa.types.is_integer(field.type) and pa.types.is_integer(other)
        if integers and pa.types.is_uint64(field.type) != pa.types.is_uint64(other):
            raise pa.ArrowTypeError(f"Field {field.name} has incompatible types: {other} vs {field.type}")
