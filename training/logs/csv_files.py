"""Reading a log's CSV files: decompressed by their name, parsed with line breaks in quoted values, a
categorical column's cells kept as text, and refused naming a column that is not UTF-8 or a header
written with another delimiter."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from training.logs.arrow_files import arrow_input
from training.logs.cell_values import is_utf8
from training.logs.csv_codes import inferred_codes, read_as_bytes
from training.logs.formats import CSV_COMPRESSION, log_format
from training.logs.row_words import FileRows
from training.logs.wrong_rows import wrong_rows

# A quoted CSV value may hold line breaks (a large file's failed past pyarrow's first block: "Expected 8
# columns, got 1").
CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)


def read_csv(file: Path, categorical: Collection[str] = ()) -> pa.Table:
    """A CSV file, decompressed by its name's ending (pyarrow's own choice reads ``X.CSV.GZ`` as text). A text
    cell is the text the service would hash for it in a request, an empty one ``""`` and ``NA`` included
    (as a Parquet log's are): a CSV's text column cannot say missing (README, "Your own logs"). A
    ``categorical`` column pyarrow reads as integers keeps its cells' text, its gaps null: codes with leading
    zeros (``07``, ``03574``) trained as 7 and 3574, while a request's ``"07"`` is hashed as that text. The
    file is read once, those columns as bytes (``training/logs/csv_codes.py``; it was read again for them, a
    ``.csv.gz`` decompressed twice, and again for a categorical column of floats, booleans or dates)."""
    table = _csv_table(file, pacsv.ConvertOptions(column_types=read_as_bytes(list(categorical))))
    for name in categorical:
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, inferred_codes(table.column(name)))
    return table


def refuse_text_not_utf8(file: Path, table: pa.Table, what: str) -> None:
    """ValueError naming a column of the CSV ``file`` that pyarrow read as bytes, which it does only where a cell
    is not UTF-8: a file exported as Windows-1252 or Latin-1 (Excel's, ``caf\\xe9.fr``). Its text columns were
    left out of a proposed spec with a header comment alone, and ``ctr train`` refused its feature as "must be a
    string"; the whole file is in that encoding, so the message says how to re-encode it (Parquet's bytes, which
    may be binary ids, are read as text where they are UTF-8: training/logs/feature_checks.py)."""
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            not_utf8 = np.array([v is not None and not is_utf8(v) for v in column.to_pylist()])
            compressed = " (decompressed first)" if Path(file.name.lower()).suffix in CSV_COMPRESSION else ""
            raise ValueError(
                f"{what} {file}: column {name!r} must be UTF-8 text, as a CSV is read; "
                + wrong_rows(not_utf8, column, FileRows(file))
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


def other_delimiter_hint(file: Path) -> str:
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
