"""Reading impression logs (DESIGN.md §1): Parquet or CSV files, or a directory of Parquet shards, each file
checked and all of them joined into one table."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.features import FeatureSpec
from common.log_columns import LABEL_COLUMNS
from training.logs.arrow_files import arrow_input, read_parquet
from training.logs.arrow_types import is_text
from training.logs.column_names import refuse_missing_columns, refuse_repeated_names
from training.logs.csv_files import other_delimiter_hint, read_csv, refuse_text_not_utf8
from training.logs.feature_checks import check_features
from training.logs.files import log_files
from training.logs.formats import log_format
from training.logs.label_checks import check_labels
from training.logs.log_time import joined_ts, say_ts_left_out
from training.logs.partitions import partition_columns, with_partitions
from training.logs.plain_columns import plain_columns
from training.logs.row_words import FileRows, JoinedRows
from training.logs.unified_schema import WRITE_ALIKE, decoded_schema, unified_schema


def read_tables(
    path: str | Path,
    what: str,
    check: Callable[[Path, pa.Table], None] | None = None,
    categorical: Collection[str] = (),
) -> pa.Table:
    """All rows of the Parquet/CSV files at ``path``, joined (``read_joined``)."""
    return read_joined(path, what, check, categorical).table


@dataclass(frozen=True)
class JoinedLog:
    """A log's files read and joined (``read_joined``): the table, and where its rows lie in the files (a
    warning about the whole log names a row in its file)."""

    table: pa.Table
    rows: JoinedRows


def read_joined(
    path: str | Path,
    what: str,
    check: Callable[[Path, pa.Table], None] | None = None,
    categorical: Collection[str] = (),
) -> JoinedLog:
    """All rows of the Parquet/CSV files at ``path`` (``log_files``), joined: each file read, with its
    partition keys as columns (``with_partitions``), and given to ``check`` (ValueError naming a file that
    cannot be read, ``what`` saying what it is: "impression log"),
    then those with rows joined as ``unified_schema`` unifies them (ValueError naming the first file whose
    column types disagree, or a 64-bit unsigned column joined with a signed one), their ``ts`` as ``joined_ts``
    joins it (times of different types as UTC timestamps; types that cannot be made alike leave ``ts`` out, said
    once); ValueError when none has a row. A CSV's ``categorical`` columns keep their text (``read_csv``)."""
    files = log_files(path)
    tables = []
    for file in files:
        try:
            table = plain_columns(read_csv(file, categorical) if log_format(file) == "csv" else read_parquet(file))
        except (pa.ArrowInvalid, OSError) as error:  # "Empty CSV file", not Parquet, ...: say which file
            refuse_repeated_names(file, _parquet_names(file), what)
            hint = other_delimiter_hint(file) or _read_as_parquet(file)
            raise ValueError(f"{what} {file} cannot be read: {error}{hint}") from None
        refuse_repeated_names(file, table.column_names, what)
        if log_format(file) == "csv":
            refuse_text_not_utf8(file, table, what)
        table = with_partitions(table, partition_columns(file, path, table.column_names))
        if check is not None:
            check(file, table)
        tables.append(table)
    read = [(file, table) for file, table in zip(files, tables, strict=True) if table.num_rows]  # an empty one's
    if not read:  # types do not matter: it is skipped, as the streamed trainer skips a shard without rows
        raise ValueError(f"{what} {path} has no rows")
    read = _codes_as_text_where_a_csv_kept_them(read, categorical)
    ts = joined_ts([(file, table.schema) for file, table in read], Path(path))  # no model reads ts: types may differ
    if ts.left_out:
        say_ts_left_out(path, ts.left_out)
    read = [(file, ts.table(table)) for file, table in read]
    unified_schema([(file, table.schema) for file, table in read], what)  # names a file that disagrees
    decoded = [table.cast(decoded_schema(table.schema)) for _, table in read]
    try:
        joined = pa.concat_tables(decoded, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as error:  # joined types a value does not fit
        raise ValueError(f"the files of {path} cannot be joined ({error}): {WRITE_ALIKE}") from None
    return JoinedLog(joined, JoinedRows(tuple((file, table.num_rows) for file, table in read), Path(path)))


def _codes_as_text_where_a_csv_kept_them(
    read: list[tuple[Path, pa.Table]], categorical: Collection[str]
) -> list[tuple[Path, pa.Table]]:
    """The files' tables with a ``categorical`` column that is integers in some and text in others (a CSV's
    codes keep their text, ``read_csv``; a Parquet file beside it holds them as int64) cast to text in all:
    the pair was refused as disagreeing types. An integer is hashed as its digits' text is, so no bucket moves."""
    for name in categorical:  # a CSV's text alone: Parquet files that disagree are still refused (WRITE_ALIKE)
        present = [(file, table.schema.field(name).type) for file, table in read if name in table.column_names]
        kept = any(log_format(file) == "csv" and is_text(kind) for file, kind in present)
        if kept and any(pa.types.is_integer(kind) for _, kind in present):
            read = [
                (file, _column_as_text(table, name) if name in table.column_names else table) for file, table in read
            ]
    return read


def _column_as_text(table: pa.Table, name: str) -> pa.Table:
    column = table.column(name)
    if not pa.types.is_integer(column.type):
        return table
    return table.set_column(table.column_names.index(name), name, pc.cast(column, pa.string()))


def _read_as_parquet(file: Path) -> str:
    """A hint for a file named neither Parquet nor CSV (``x.tsv``, ``x.json``) that was read as Parquet."""
    if log_format(file) is not None:
        return ""
    return " (a file named other than .parquet or .csv, .csv.gz, .csv.bz2 is read as Parquet: name it for its format)"


def _parquet_names(file: Path) -> list[str]:
    """The column names a Parquet file's footer says, or none where it cannot be read."""
    try:
        if log_format(file) != "parquet":
            return []
        with arrow_input(file) as raw:
            return pq.read_schema(raw).names
    except (pa.ArrowInvalid, OSError):
        return []


def read_logs(path: str | Path, spec: FeatureSpec | None = None) -> pa.Table:
    """All rows of the logs at ``path``, checked (``read_joined_logs``)."""
    return read_joined_logs(path, spec).table


def read_joined_logs(path: str | Path, spec: FeatureSpec | None = None) -> JoinedLog:
    """All rows of the logs at ``path`` (``read_joined``), each file checked for the label columns
    (``check_labels``) and the spec's features, and at least one row."""
    required = list(LABEL_COLUMNS) + ([f.name for f in spec.features if f.required] if spec is not None else [])

    def check(file: Path, table: pa.Table) -> None:
        refuse_missing_columns(file, required, table.column_names)
        if table.num_rows:  # a header alone has no types to check (CSV reads its columns as nulls)
            check_labels(table, str(file), FileRows(file))
            if spec is not None:
                check_features(table, spec, str(file), FileRows(file))

    categorical = [f.name for f in spec.categorical] if spec is not None else []
    return read_joined(path, "impression log", check, categorical)
