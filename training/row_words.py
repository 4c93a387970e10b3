"""How a message names a row of a user's log file, so that the row it names is the row the user finds there.

A row is counted from 0 within its own file: never across the files of a folder or glob (the message names the
file), nor from the start of a Parquet row group or of a read batch. That is the index pandas' ``iloc`` and
pyarrow's ``Table.slice`` take, and the README says so. A CSV's row is also named by the line an editor shows and
``sed -n Np`` prints, the header being line 1: row 0 is line 2 unless a quoted value above it holds a line break
(``CSV_PARSE`` reads those), so the line is counted in the file itself, once, when a message is written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa


def row_words(file: Path | None, row: int) -> str:
    """ "row 7" (0-based, within ``file``); a CSV's with the line it starts on: "row 7 (line 9 of the CSV)"."""
    from training.logs import log_format  # logs.py words its rows here

    if file is None or log_format(file) != "csv":
        return f"row {row}"
    line = _csv_line(file, row)
    return f"row {row}" if line is None else f"row {row} (line {line} of the CSV)"


@dataclass(frozen=True)
class FileRows:
    """Where a table's rows lie: ``file`` (None: a table of no one file), its first row being row ``first``
    of that file (a streamed row group's first is not the file's)."""

    file: Path | None = None
    first: int = 0

    def named(self, index: int) -> str:
        """The table's row ``index`` as ``row_words`` names it in the file."""
        return row_words(self.file, self.first + index)


def _csv_line(file: Path, row: int) -> int | None:
    """The line of ``file`` on which its data row ``row`` (0-based, after the header) starts, blank lines
    skipped as pyarrow skips them (undecodable bytes replaced: only lines count); None where the file cannot be
    read so far."""
    from training.logs import csv_stream

    try:
        with (
            csv_stream(file) as stream,
            io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="") as text,
        ):
            reader = csv.reader(text)
            records = -2  # the header is record -1
            while True:
                start = reader.line_num + 1
                if next(reader):
                    records += 1
                    if records == row:
                        return start
    except (OSError, EOFError, StopIteration, csv.Error, pa.ArrowException):  # a damaged file: no line to name
        return None


OWN_TABLE = FileRows()  # a table of no one file (built in Python): its rows counted from 0
