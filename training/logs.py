"""Reading impression logs (DESIGN.md §1): Parquet or CSV files, or a directory of Parquet shards."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from common.encoder import EXACT_INTEGERS, FLOAT32_LIMIT, whole_floats, whole_numbers
from common.features import MAX_CATEGORY_CHARS, FeatureSpec
from common.log_columns import CLICK_ALIASES, LABEL_COLUMNS, MISSING_LABELS
from common.numeric_transform import in_domain, outside_domain
from training.arrow_files import arrow_input, read_parquet
from training.arrow_types import is_number, is_text
from training.csv_codes import inferred_codes, read_as_bytes
from training.log_time import joined_ts, say_ts_left_out
from training.row_words import OWN_TABLE, FileRows, JoinedRows
from training.shard_folder import MANIFEST, refuse_unfinished

logger = logging.getLogger(__name__)


def log_files(path: str | Path, what: str = "impression log") -> list[Path]:
    """The files a log path stands for: itself, the Parquet/CSV files of a directory, or the files a
    glob pattern (``DIR/*.parquet``) matches (FileNotFoundError naming ``what`` the caller reads where
    there is none); sorted with the numbers in their paths read as numbers
    (``hour=9`` before ``hour=10``, as Hive and Spark name partitions unpadded), which is time order for
    shards and partitions. In a directory, a file or folder whose name starts with ``_`` or ``.`` is not
    the log's (Spark's ``_temporary/`` of a job still writing, ``_SUCCESS``, hidden files: pyarrow.dataset,
    Spark and Hive leave them out too); their rows were read as the log's. A folder of ``ctr simulate --shards``
    that its writer did not finish is refused (training/shard_folder.py): its first shards were read as the log."""
    files = _listed_files(Path(path), what)
    for folder in sorted({file.parent for file in files}):
        refuse_unfinished(folder)
    return files


def _listed_files(path: Path, what: str) -> list[Path]:
    if path.is_dir():
        files = sorted(
            (
                p
                for p in path.rglob("*")
                if log_format(p) is not None and not _hidden(p.relative_to(path)) and p.is_file()
            ),
            key=_natural_order,
        )
        if not files:
            raise FileNotFoundError(f"{path} holds no .parquet or .csv (.csv.gz, .csv.bz2) files")
        return files
    if glob.has_magic(str(path)):
        files = sorted((Path(p) for p in glob.glob(str(path)) if Path(p).is_file()), key=_natural_order)
        if not files:
            raise FileNotFoundError(f"no {what} matches {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    return [path]


SHOWN_VALUE_CHARS = 80  # of a wrong value, in a refusal
CSV_COMPRESSION = {".gz": "gzip", ".bz2": "bz2"}  # a CSV's compression by its name's ending, case aside
CSV_SUFFIXES = (".csv", *(f".csv{ending}" for ending in CSV_COMPRESSION))
# A quoted CSV value may hold line breaks (a large file's failed past pyarrow's first block: "Expected 8
# columns, got 1").
CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)


def log_format(path: Path) -> str | None:
    """ "csv" or "parquet" by the file's name, case aside (``.CSV``, ``.csv.gz`` were skipped in a folder);
    None for another file."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return "parquet" if name.endswith(".parquet") else None


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


def _hidden(relative: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.parts)


def _natural_order(path: Path) -> tuple[str | int, ...]:
    """A path's sort key with each run of digits read as a number: ``hour=9`` before ``hour=10``."""
    parts = re.split(r"(\d+)", str(path))
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def manifest_spec(path: str | Path) -> Path | None:
    """The feature spec that a directory of shards names in its manifest (``ctr simulate --shards``), if any."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    spec = json.loads(manifest.read_text(encoding="utf-8")).get("spec")
    return folder / spec if spec and (folder / spec).is_file() else None


WRITE_ALIKE = (
    "write them alike (one format, the same types; a CSV column of digits is read as numbers, but for a categorical "
    "feature's, which keeps its text, where Parquet keeps the type it was written with)"
)


def unified_schema(schemas: list[tuple[Path, pa.Schema]], what: str = "impression log") -> pa.Schema:
    """The schema of a log's files, unified as their tables are joined (permissive: a column of int32 in
    one and int64 in another is int64, one a file lacks is null there); ValueError naming the first file
    (as ``what``) whose column types disagree with the files' before it (it named the directory alone)."""
    schemas = [(file, _decoded(schema)) for file, schema in schemas]
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


def _decoded(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each dictionary-encoded column's type its values' (a column dictionary-encoded in one
    file, pandas' ``category``, and plain in another holds the same values: they join), and a view column's
    the plain type (``plain_columns``)."""
    for i, field in enumerate(schema):
        if pa.types.is_dictionary(field.type):
            schema = schema.set(i, field.with_type(field.type.value_type))
        if str(field.type) in _VIEWS:
            schema = schema.set(i, field.with_type(_VIEWS[str(field.type)]))
    return schema


_VIEWS = {"string_view": pa.string(), "binary_view": pa.binary()}  # by name: pyarrow < 16 has no view types


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
    if str(kind) in _VIEWS:
        return column.cast(_VIEWS[str(kind)])
    if pa.types.is_decimal(kind) and kind.scale == 0:
        try:
            return column.cast(pa.int64())
        except pa.ArrowInvalid:  # past int64: a number, as a decimal with a fraction is
            return column
    return column


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
    once); ValueError when none has a row. A CSV's ``categorical`` columns keep their text (``_read_csv``)."""
    files = log_files(path)
    tables = []
    for file in files:
        try:
            table = plain_columns(_read_csv(file, categorical) if log_format(file) == "csv" else read_parquet(file))
        except (pa.ArrowInvalid, OSError) as error:  # "Empty CSV file", not Parquet, ...: say which file
            refuse_repeated_names(file, _parquet_names(file), what)
            hint = _other_delimiter(file) or _read_as_parquet(file)
            raise ValueError(f"{what} {file} cannot be read: {error}{hint}") from None
        refuse_repeated_names(file, table.column_names, what)
        if log_format(file) == "csv":
            _refuse_text_not_utf8(file, table, what)
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
    decoded = [table.cast(_decoded(table.schema)) for _, table in read]
    try:
        joined = pa.concat_tables(decoded, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as error:  # joined types a value does not fit
        raise ValueError(f"the files of {path} cannot be joined ({error}): {WRITE_ALIKE}") from None
    return JoinedLog(joined, JoinedRows(tuple((file, table.num_rows) for file, table in read), Path(path)))


def _codes_as_text_where_a_csv_kept_them(
    read: list[tuple[Path, pa.Table]], categorical: Collection[str]
) -> list[tuple[Path, pa.Table]]:
    """The files' tables with a ``categorical`` column that is integers in some and text in others (a CSV's
    codes keep their text, ``_read_csv``; a Parquet file beside it holds them as int64) cast to text in all:
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


def _read_csv(file: Path, categorical: Collection[str] = ()) -> pa.Table:
    """A CSV file, decompressed by its name's ending (pyarrow's own choice reads ``X.CSV.GZ`` as text). A text
    cell is the text the service would hash for it in a request, an empty one ``""`` and ``NA`` included
    (as a Parquet log's are): a CSV's text column cannot say missing (README, "Your own logs"). A
    ``categorical`` column pyarrow reads as integers keeps its cells' text, its gaps null: codes with leading
    zeros (``07``, ``03574``) trained as 7 and 3574, while a request's ``"07"`` is hashed as that text. The
    file is read once, those columns as bytes (``training/csv_codes.py``; it was read again for them, a
    ``.csv.gz`` decompressed twice, and again for a categorical column of floats, booleans or dates)."""
    table = _csv_table(file, pacsv.ConvertOptions(column_types=read_as_bytes(list(categorical))))
    for name in categorical:
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, inferred_codes(table.column(name)))
    return table


def _refuse_text_not_utf8(file: Path, table: pa.Table, what: str) -> None:
    """ValueError naming a column of the CSV ``file`` that pyarrow read as bytes, which it does only where a cell
    is not UTF-8: a file exported as Windows-1252 or Latin-1 (Excel's, ``caf\\xe9.fr``). Its text columns were
    left out of a proposed spec with a header comment alone, and ``ctr train`` refused its feature as "must be a
    string"; the whole file is in that encoding, so the message says how to re-encode it (Parquet's bytes, which
    may be binary ids, are read as text where they are UTF-8: ``_wrong_values``)."""
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            not_utf8 = np.array([v is not None and not _utf8(v) for v in column.to_pylist()])
            compressed = " (decompressed first)" if Path(file.name.lower()).suffix in CSV_COMPRESSION else ""
            raise ValueError(
                f"{what} {file}: column {name!r} must be UTF-8 text, as a CSV is read; "
                + _wrong_rows(not_utf8, column, FileRows(file))
                + f": the file is in another encoding, so re-encode it as UTF-8{compressed}, from Windows-1252 or "
                "Latin-1 (what Excel writes) with `iconv -f cp1252 -t utf-8 in.csv > out.csv`"
            )


def _csv_table(file: Path, convert: pacsv.ConvertOptions) -> pa.Table:
    with csv_stream(file) as stream:
        return pacsv.read_csv(stream, parse_options=CSV_PARSE, convert_options=convert)


@contextmanager
def csv_stream(file: Path) -> Iterator[pa.NativeFile]:
    """A CSV's bytes, decompressed as its name's ending says (``CSV_COMPRESSION``)."""
    compression = CSV_COMPRESSION.get(Path(file.name.lower()).suffix)
    with arrow_input(file) as raw, pa.input_stream(raw, compression=compression) as stream:
        yield stream


def _read_as_parquet(file: Path) -> str:
    """A hint for a file named neither Parquet nor CSV (``x.tsv``, ``x.json``) that was read as Parquet."""
    if log_format(file) is not None:
        return ""
    return " (a file named other than .parquet or .csv, .csv.gz, .csv.bz2 is read as Parquet: name it for its format)"


def _other_delimiter(file: Path) -> str:
    """A hint for a CSV whose header holds no comma but semicolons, tabs or bars: written with another
    delimiter (read as one column it lacked every other; with decimal commas it was "Expected 1 columns,
    got 2")."""
    if log_format(file) != "csv" or Path(file.name.lower()).suffix in CSV_COMPRESSION:
        return ""
    try:
        with open(file, encoding="utf-8", errors="replace") as text:
            header = text.readline()
    except OSError:
        return ""
    return (
        "; its header holds no comma: write the CSV with commas"
        if "," not in header and any(delimiter in header for delimiter in ";\t|")
        else ""
    )


def _parquet_names(file: Path) -> list[str]:
    """The column names a Parquet file's footer says, or none where it cannot be read."""
    try:
        if log_format(file) != "parquet":
            return []
        with arrow_input(file) as raw:
            return pq.read_schema(raw).names
    except (pa.ArrowInvalid, OSError):
        return []


def refuse_repeated_names(file: Path, names: list[str], what: str) -> None:
    """ValueError naming a column name ``file`` holds twice (Arrow's own message, "Multiple matches for
    FieldRef.Name(site) in site: string ...", showed part of a schema instead)."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"{what} {file} holds more than one column named {repeated[0]!r}: keep one of them{_headless(file, names)}"
        )


def _headless(file: Path, names: list[str]) -> str:
    """A hint for a CSV whose first line holds numbers where names are wanted: written without a header
    (Spark's ``df.write.csv`` default), its first row was taken for the columns' names ("" if not so)."""
    if log_format(file) != "csv" or not any(_reads_as_number(name) for name in names):
        return ""
    return " (its first line holds numbers: a CSV's first line must name the columns, write it with a header)"


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


def refuse_missing_columns(file: Path, required: list[str], names: list[str], what: str = "impression log") -> None:
    """ValueError naming the ``required`` columns a log file lacks (it holds ``names``; ``what``: what the file
    is, "non-displayed table", its last word what the message calls it), with what may be wrong: a feature that
    could be optional, a name differing in case or spaces, a CSV's other delimiter or missing header; else what
    each missing label means and what to write (``_missing_labels``)."""
    missing = [c for c in required if c not in names]
    if missing:
        features = [c for c in missing if c not in LABEL_COLUMNS]  # the labels are needed whatever the spec
        optional = " (a feature can instead be made optional in the spec: required = false, default = ...)"
        raise ValueError(
            f"{what} {file} lacks the columns {missing}: add them to the {what.split()[-1]}"
            + optional * bool(features)
            # a file misread (a CSV without a header or with another delimiter) or a name miscased lacks no label
            + (
                ((_headless(file, names) or _near_misses(missing, names)) + _other_delimiter(file))
                or _missing_labels(missing, names)
            )
        )


def _missing_labels(missing: list[str], names: list[str]) -> str:
    """What each missing label column means and what to write in it (``MISSING_LABELS``); a click column under
    another log's name (Criteo's ``label``) is named, to be renamed."""
    said = []
    for label in (c for c in missing if c in MISSING_LABELS):
        aliases = [name for name in CLICK_ALIASES if name in names] if label == "click" else []
        renamed = f"the log's {aliases[0]!r} is the click label by another name: rename it to click" if aliases else ""
        said.append(f"{label}: {renamed or MISSING_LABELS[label]}")
    return f"; {'; '.join(said)}" if said else ""


def refuse_one_class(
    logs: str | Path, clicks: int, impressions: int, rows: str = "the training logs", tail: str = ""
) -> None:
    """ValueError when every impression of the training logs was clicked, or none was: a CTR model learns
    nothing from one class, and such a log is mostly a broken join (it trained and exported a version that
    predicted a CTR of 1e-4 against 0.035 observed, said only by the warning of a small log). ``rows``: what
    the counted impressions are, before the logs' name; ``tail``: what the rows not counted hold."""
    if clicks in (0, impressions):
        said = "0 on every row" if clicks == 0 else "1 on every row"
        raise ValueError(
            f"{rows} {logs}: click is {said} of {impressions} impressions{tail}, so there is nothing to learn "
            "a click-through rate from (a log of one class is often a join that lost the clicks)"
        )


def _near_misses(missing: list[str], found: list[str]) -> str:
    """The names the file holds instead of missing ones, differing only in case or spaces (``Click``,
    `` position ``), where it says why the columns were not found."""
    near = [name for name in found if name.strip().lower() in missing and name not in missing]
    return f"; it has {near}: column names must match exactly (case and spaces)" if near else ""


def check_features(table: pa.Table, spec: FeatureSpec, source: str, rows: FileRows = OWN_TABLE) -> None:
    """ValueError, naming the feature and its first wrong row, unless every value of the spec's features
    in ``table`` is one the service would take in a request: a required feature present (not null, not
    NaN), a numeric feature's value a finite number within float32, a categorical one's a string or an
    integer (floats with integral values, how pandas writes integers with gaps, are read as integers where the
    service reads a request's so: ``whole_numbers``). A row is named where it lies in its file (``rows``)."""
    for feature in spec.features:
        if feature.name not in table.column_names:
            continue
        column = table.column(feature.name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        absent = pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
        if feature.required and absent.any():
            raise ValueError(
                f"impression log {source}: required feature {feature.name!r} is missing on {int(absent.sum())} rows "
                f"(the first, {rows.named(int(np.flatnonzero(absent)[0]))}): fill them in, or make it optional "
                "in the spec (required = false, default = ...)"
            )
        wrong, wanted = _wrong_values(feature.kind, column, absent)
        if (wrong is None or not wrong.any()) and feature.transform is not None:
            wrong, wanted = _outside_domain(feature.transform, column, absent)
        if wrong is not None and wrong.any():
            raise ValueError(
                f"impression log {source}: {feature.kind} feature {feature.name!r} must be {wanted}; "
                + _wrong_rows(wrong, column, rows)
            )


def _outside_domain(transform: str, column: pa.ChunkedArray, absent: np.ndarray) -> tuple[np.ndarray, str]:
    """(the rows of a numeric column, its values already valid numbers, below ``transform``'s domain, why)."""
    values = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return ~absent & ~in_domain(transform, np.nan_to_num(values)), outside_domain(transform).removeprefix("must be ")


INEXACT_INTEGERS = (
    "an integer below 2**53 (integers past 2**53 cannot be a numeric feature exactly: make it categorical in the "
    "spec or leave it out)"
)


def _wrong_values(kind: str, column: pa.ChunkedArray, absent: np.ndarray) -> tuple[np.ndarray | None, str]:
    """(the rows whose value a feature of ``kind`` cannot take, what it takes); None: every row fits."""
    text = is_text(column.type)
    if kind == "numeric":
        wanted = "a finite number within float32's range"
        if text:  # CSV reads a column as text when one of its values is not a number: point at that one
            not_numbers = np.array([v is not None and not _reads_as_number(v) for v in column.to_pylist()])
            return (not_numbers if not_numbers.any() else ~absent), wanted + " (the column holds text)"
        if is_number(column.type):  # an unsafe cast: an integer past 2**53 is refused below, not a cast's ArrowInvalid
            values = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            inexact = ~absent & (np.abs(values) >= EXACT_INTEGERS) if pa.types.is_integer(column.type) else None
            if inexact is not None and inexact.any():  # a uint64 id (Avazu's) read as a number rounds to another's
                return inexact, INEXACT_INTEGERS
            return ~absent & ~(np.abs(values) <= FLOAT32_LIMIT), wanted
        return None if pa.types.is_boolean(column.type) else ~absent, wanted
    wanted = "a string or an integer"
    if pa.types.is_floating(column.type):  # pandas' integers with gaps: read as integers where whole_number reads
        values = column.to_numpy(zero_copy_only=False)
        wrong = ~absent & ~whole_numbers(values)
        if (wrong & whole_floats(values)).any():  # whole, so from 2**53 on: rounded
            # pandas wrote int64 ids with gaps as floats, rounding them; an ad server's exact id hashes elsewhere
            wanted += (
                ", or a whole float below 2**53 (from there on a float may have lost the id's last digits already: "
                "write the ids as int64 or as text)"
            )
        return wrong, wanted
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):  # bytes: as text, if UTF-8
        not_text = np.array([v is not None and not _utf8(v, MAX_CATEGORY_CHARS) for v in column.to_pylist()])
        return not_text, f"{wanted} of at most {MAX_CATEGORY_CHARS} characters (bytes are read as UTF-8 text)"
    if text:  # one long value took memory by the row count in the encoder (2 MB: 7.4 GB for 300 rows)
        too_long = pc.fill_null(pc.greater(pc.utf8_length(column), MAX_CATEGORY_CHARS), False)
        too_long = too_long.to_numpy(zero_copy_only=False)
        return (too_long if too_long.any() else None), f"{wanted} of at most {MAX_CATEGORY_CHARS} characters"
    if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
        return None, wanted
    return ~absent, f"{wanted}, not {column.type} values"  # dates, times, decimals, lists: cast them first


def _utf8(value: bytes, max_chars: int | None = None) -> bool:
    """Whether ``value`` is UTF-8 text (of at most ``max_chars`` characters, where given)."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return False
    return max_chars is None or len(text) <= max_chars


def _wrong_rows(wrong: np.ndarray, column: pa.ChunkedArray, rows: FileRows) -> str:
    """How many rows are wrong and the first of them (named where it lies in its file: ``rows``), with its
    value: "3 rows are not (the first, row 7, is 'x')"."""
    first = int(np.flatnonzero(wrong)[0])
    value = column[first].as_py()
    shown = "missing" if value is None or value != value else repr(value)  # null, or NaN
    if len(shown) > SHOWN_VALUE_CHARS:  # a text's own length; any other value's (a timestamp's) as written
        length = len(value) if isinstance(value, str | bytes) else len(shown)
        shown = f"{shown[:SHOWN_VALUE_CHARS]}... ({length} characters)"
    return f"{int(wrong.sum())} rows are not (the first, {rows.named(first)}, is {shown})"


def _reads_as_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a date or a list of a column of another type: no number either
        return False
    return True


POSITION_BASE = " (positions are 1-based: the top slot is 1; add 1 to 0-based positions)"
# label -> (lowest, highest value) allowed; booleans are taken as 0/1 for the click and the conversion
LABEL_RANGES = {"position": (1, None), "click": (0, 1), "conversion": (0, 1)}


def check_labels(table: pa.Table, source: str, rows: FileRows = OWN_TABLE) -> None:
    """ValueError unless every row has a position (an integer, 1 the top slot), a click and a conversion
    (0 or 1, integers or booleans), and no conversion without a click. The message names ``source``, the
    column, how many rows are wrong and the first of them (named where it lies in its file: ``rows``)."""
    values = {}
    for name, (lowest, highest) in LABEL_RANGES.items():
        column = table.column(name)
        wanted = "an integer of at least 1" if highest is None else "0 or 1"
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or (pa.types.is_boolean(kind) and highest)):
            words = [(row, v) for row, v in enumerate(column.to_pylist()) if v is not None and not _reads_as_number(v)]
            shown = f" (the first, {rows.named(words[0][0])}, is {words[0][1]!r})" if words else ""
            raise ValueError(f"impression log {source}: {name} must be {wanted} on every row, not {kind} values{shown}")
        array = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)  # nulls as NaN
        # a uint64 past 2**53 (a safe cast's ArrowInvalid named no file) rounds: no label is read exactly there
        wrong = np.isnan(array) | (array < lowest) | (array != np.floor(array)) | (np.abs(array) >= EXACT_INTEGERS)
        if highest is not None:
            wrong |= array > highest
        if wrong.any():
            raise ValueError(
                f"impression log {source}: {name} must be {wanted} on every row; "
                + _wrong_rows(wrong, column, rows)
                + POSITION_BASE * (name == "position" and bool((array == 0).any()))
                + _unclicked_gaps(name, array, values)
            )
        values[name] = array
    unclicked = (values["conversion"] == 1) & (values["click"] != 1)
    if unclicked.any():
        raise ValueError(
            f"impression log {source} has conversions on unclicked impressions (conversion 1 where click is 0): "
            f"{int(unclicked.sum())} rows (the first, {rows.named(int(np.flatnonzero(unclicked)[0]))})"
        )


def _unclicked_gaps(name: str, array: np.ndarray, values: dict[str, np.ndarray]) -> str:
    """A hint for conversions missing on unclicked rows alone (a conversion join that filled clicked rows only):
    an impression not clicked did not convert ("" for another label, or gaps on clicked rows too)."""
    missing = np.isnan(array)
    if name != "conversion" or not missing.any() or (values["click"][missing] == 1).any():
        return ""
    return f"; the {int(missing.sum())} missing are all on unclicked rows: write 0 there"


def column_array(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: strings (and UTF-8 bytes) as a unicode array, numbers as they are (decimals as
    floats), booleans as 0/1 integers (a request sends them so: the service refuses JSON booleans), nulls
    as None (NaN among floats)."""
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int64())
    elif pa.types.is_decimal(column.type):
        column = column.cast(pa.float64())
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        column = column.cast(pa.large_string())  # checked UTF-8 (check_features)
    if pa.types.is_integer(column.type) and column.null_count:
        return np.array(column.to_pylist(), dtype=object)  # ints and None: as floats, 3 would be a category 3.0
    if is_text(column.type):
        return column.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(column.type):
        return column.to_numpy(zero_copy_only=False).astype(np.float64)
    return column.to_numpy(zero_copy_only=False)


def feature_columns(table: pa.Table, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The spec's features present in ``table`` as numpy columns (absent optional ones are left out); a
    categorical feature's floats (integral: ``check_features``) as integers, NaN as None."""
    columns = {f.name: column_array(table, f.name) for f in spec.features if f.name in table.column_names}
    for feature in spec.categorical:
        values = columns.get(feature.name)
        if values is not None and values.dtype.kind == "f":
            columns[feature.name] = np.array([None if v != v else int(v) for v in values.tolist()], dtype=object)
    return columns


def log_name(file: Path, path: str | Path) -> str:
    """How a log file is named in a fingerprint: its path below the log directory (its folders' partition
    keys are data: two logs whose files swap folders differ), or its name."""
    path = Path(path)
    return file.relative_to(path).as_posix() if path.is_dir() else file.name


def fingerprint(path: str | Path) -> str:
    """sha256 over the name (``log_name``) and bytes of every log file, in order: which data a model was
    trained on."""
    digest = hashlib.sha256()
    for file in log_files(path):
        digest.update(log_name(file, path).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
