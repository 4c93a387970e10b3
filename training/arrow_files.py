"""Files handed to pyarrow as the operating system names them.

pyarrow turns a path given as text into bytes with UTF-8, whatever the locale, where Python uses the
filesystem encoding: in a Latin-1 locale, or the C locale with Python's UTF-8 mode off, a log under
``données/`` that Python lists was "No such file" to pyarrow, and a name whose bytes are not UTF-8 was a
``UnicodeEncodeError`` naming no file. Opened from the path's own bytes (``os.fsencode``), it is the file
Python found. pyarrow's datasets take text paths only: ``arrow_name`` gives the text that reaches the file.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq


def arrow_input(path: str | os.PathLike[str]) -> pa.NativeFile:
    """``path`` opened for reading, for pyarrow's readers (``pq.read_table``, ``pa.input_stream``, ...)."""
    return pa.OSFile(os.fsencode(path))


def arrow_output(path: str | os.PathLike[str]) -> pa.NativeFile:
    """``path`` opened for writing (truncated), for pyarrow's writers."""
    return pa.OSFile(os.fsencode(path), "wb")


def read_parquet(path: str | os.PathLike[str]) -> pa.Table:
    """A Parquet file's rows."""
    with arrow_input(path) as file:
        return pq.read_table(file)


def arrow_name(path: str | os.PathLike[str]) -> str | None:
    """The text naming ``path`` for a pyarrow reader that takes text only (a dataset): its bytes read as
    UTF-8, which pyarrow turns back into the same bytes; None where they are not UTF-8."""
    try:
        return os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return None
