"""How a message names a row of a user's log file, so that the row it names is the row the user finds there.

A row is counted from 0 within its own file: never across the files of a folder or glob (the message names the
file), nor from the start of a Parquet row group or of a read batch. That is the index pandas' ``iloc`` and
pyarrow's ``Table.slice`` take, and the README says so. A CSV's row is also named by the line an editor shows and
``sed -n Np`` prints, the header being line 1: row 0 is line 2 unless a quoted value above it holds a line break
(``CSV_PARSE`` reads those), so the line is counted in the file itself, once, when a message is written.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from training.logs.formats import log_format


def row_words(file: Path | None, row: int) -> str:
    """ "row 7" (0-based, within ``file``); a CSV's with the line it starts on: "row 7 (line 9 of the CSV)"."""
    if file is None or log_format(file) != "csv":
        return f"row {row}"
    line = _csv_line(file, row)
    return f"row {row}" if line is None else f"row {row} (line {line} of the CSV)"


def file_in_log(file: Path, given: Path | None) -> str:
    """How a message about a log of several files, given as ``given`` (a folder or a glob), names one of them: by
    its path below the folder given (``day=2/part-0.parquet``: its name alone is another folder's file's too), or
    as the glob gave it; the folder's own path, named once at the message's start, is not repeated in each."""
    if given is not None and file.is_relative_to(given):
        return file.relative_to(given).as_posix()
    return str(file)


@dataclass(frozen=True)
class FileRows:
    """Where a table's rows lie: ``file`` (None: a table of no one file), its first row being row ``first``
    of that file (a streamed row group's first is not the file's)."""

    file: Path | None = None
    first: int = 0

    def named(self, index: int) -> str:
        """The table's row ``index`` as ``row_words`` names it in the file."""
        return row_words(self.file, self.first + index)


@dataclass(frozen=True)
class JoinedRows:
    """Where the rows of a table joined from a log's files lie: ``files``, each with its row count, in the order
    they were joined (none: a table of no file, whose rows are its own), and the path the log was ``given`` as
    (a file, a folder or a glob). A warning about the whole log names a row in its file: the joined row was a
    row of the concatenation, which no user can find."""

    files: tuple[tuple[Path, int], ...] = ()
    given: Path | None = None

    def file(self, row: int) -> Path | None:
        """The file the joined row ``row`` lies in (None: a table of no file)."""
        return self.files[self._index(row)][0] if self.files else None

    def file_name(self, row: int) -> str | None:
        """How a message about the log names the file of the joined row ``row`` (``file_in_log``); None where
        the log is that one file (or no file), which the message names already."""
        file = self.file(row)
        if file is None or file == self.given:
            return None
        return file_in_log(file, self.given)

    def named(self, row: int) -> str:
        """The joined row ``row`` as ``row_words`` names it in its own file: "row 7 (line 9 of the CSV)"."""
        if not self.files:
            return row_words(None, row)
        index = self._index(row)
        return row_words(self.files[index][0], row - self._starts[index])

    @property
    def _starts(self) -> list[int]:
        return [0, *itertools.accumulate(rows for _, rows in self.files)]

    def _index(self, row: int) -> int:
        return min(bisect.bisect_right(self._starts, row) - 1, len(self.files) - 1)


NO_FILES = JoinedRows()  # a table of no log's files (built in Python): its rows are its own


def _csv_line(file: Path, row: int) -> int | None:
    """The line of ``file`` on which its data row ``row`` (0-based, after the header) starts, blank lines
    skipped as pyarrow skips them (undecodable bytes replaced: only lines count); None where the file cannot be
    read so far."""
    from training.logs.csv_files import csv_stream  # csv_files.py words its rows here

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
