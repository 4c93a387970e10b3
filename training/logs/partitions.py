"""Hive-style partitions: the ``key=value`` folders of a log directory, read as the columns Spark and Hive
leave out of the files below them."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pyarrow as pa

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # Hive's and Spark's folder name for a null partition value


def partition_values(file: Path, root: str | Path) -> dict[str, str | None]:
    """The Hive-style ``key=value`` folders of ``file`` below the log directory ``root``, values as text
    (URI-decoded, as Hive and Spark escape them; their default partition is null): from
    ``dt=2026-11-01/country=US/part-0.parquet``, ``dt`` and ``country``. None below a file or a glob."""
    root = Path(root)
    if not root.is_dir():
        return {}
    values: dict[str, str | None] = {}
    for part in file.relative_to(root).parent.parts:
        key, equals, value = part.partition("=")
        if not (equals and key):
            continue
        if key in values:
            raise ValueError(f"impression log {file} lies in two folders of the partition key {key!r}")
        try:
            values[key] = None if value == HIVE_NULL else urllib.parse.unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise ValueError(f"impression log {file}: folder {part!r} is not URI-encoded UTF-8 text") from None
    return values


def partition_columns(file: Path, root: str | Path, names: list[str]) -> dict[str, str | None]:
    """``partition_values`` of a file whose columns are ``names``; ValueError when it also holds a column
    named as one of its folders' keys (Spark and Hive never write both: the in-memory reader took the
    file's value and the streamed one the folder's)."""
    values = partition_values(file, root)
    both = [key for key in values if key in names]
    if both:
        raise ValueError(
            f"impression log {file} holds a column {both[0]!r} and lies in a folder {both[0]}=...: "
            "rename the column or the folder (a writer that keeps the key in its files, as polars' partition_by "
            "does, wrote both: drop the column from the files)"
        )
    return values


def with_partitions(table: pa.Table, values: dict[str, str | None]) -> pa.Table:
    """``table`` with a text column for each partition key (Spark and Hive write a partition's key in its
    folder's name, not in its files: it was dropped, so a feature ``country`` partitioned by was missing
    from every file)."""
    for key, value in values.items():
        table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    return table
