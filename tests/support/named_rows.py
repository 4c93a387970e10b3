"""The row a refusal names, read back from the file as the README tells a user to find it: a Parquet file's
``row N`` is ``pq.read_table(file).slice(N, 1)``, a CSV's ``line L of the CSV`` is the file's Lth line (``sed -n
Lp``). A test asserts what it finds there, so that a number counted from the wrong place (a folder's first file,
a row group's start, "row + 2" past a quoted line break) finds another row.

The message must name the file as the product prints it, by the whole path it read the file by (the path it was
given, joined with the file's place below it: ``str(file)``), not by its name alone, which a partitioned folder's
other files share (``day=1/part-0.parquet``, ``day=2/part-0.parquet``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

_ROW = re.compile(r"\brow (\d+)(?: \(line (\d+) of the CSV\))?")


def _named(message: str, file: Path, ran_in: Path | None) -> re.Match[str]:
    """The one row ``message`` names, which must be a row of ``file``: the message names that file by its whole
    path, as the command printed it (``ran_in``: the folder it ran in, where it was given a path relative to it,
    which it printed relative too), a path of its own (between the message's start, a space or "(" and its end,
    a space, ":" or ")")."""
    printed = re.escape(str(file if ran_in is None else file.relative_to(ran_in)))
    assert re.search(rf"(?:^|[\s(]){printed}(?:$|[\s:)])", message), (str(file), message)
    found = list(_ROW.finditer(message))
    assert len(found) == 1, message
    return found[0]


def parquet_row(message: str, file: Path, ran_in: Path | None = None) -> dict[str, Any]:
    """The row of the Parquet ``file`` that ``message`` names, as a dict of its columns."""
    row = int(_named(message, file, ran_in).group(1))
    return pq.read_table(file).slice(row, 1).to_pylist()[0]


def csv_line(message: str, file: Path, ran_in: Path | None = None) -> str:
    """The line of the CSV ``file`` that ``message`` names (header = line 1), as the file's text holds it."""
    line = _named(message, file, ran_in).group(2)
    assert line is not None, f"no line of the CSV in: {message}"
    return file.read_text(encoding="utf-8").split("\n")[int(line) - 1]
