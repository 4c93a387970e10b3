"""Files handed to pyarrow as the operating system names them.

pyarrow turns a path given as text into bytes with UTF-8, whatever the locale, where Python uses the
filesystem encoding: in a Latin-1 locale, or the C locale with Python's UTF-8 mode off, a log under
``données/`` that Python lists was "No such file" to pyarrow, and a name whose bytes are not UTF-8 was a
``UnicodeEncodeError`` naming no file. Opened from the path's own bytes (``os.fsencode``), it is the file
Python found. pyarrow's datasets take text paths only: ``arrow_name`` gives the text that reaches the file.

Every Parquet reader of logs here reads Spark's legacy INT96 timestamps in microseconds (``INT96_UNIT``):
pyarrow's default, nanoseconds, holds no time past 2262, and such a ``ts`` came back as about 1915, which the
time-order check blamed on the rows' order.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

INT96_UNIT = "us"  # years 1 to 9999 (nanoseconds: 1677 to 2262)


def arrow_input(path: str | os.PathLike[str]) -> pa.NativeFile:
    """``path`` opened for reading, for pyarrow's readers (``pq.read_table``, ``pa.input_stream``, ...)."""
    return pa.OSFile(os.fsencode(path))


def arrow_output(path: str | os.PathLike[str]) -> pa.NativeFile:
    """``path`` opened for writing (truncated), for pyarrow's writers."""
    return pa.OSFile(os.fsencode(path), "wb")


def read_parquet(path: str | os.PathLike[str]) -> pa.Table:
    """A Parquet file's rows."""
    with arrow_input(path) as file:
        return pq.read_table(file, coerce_int96_timestamp_unit=INT96_UNIT)


def parquet_file(source: pa.NativeFile) -> pq.ParquetFile:
    """An opened Parquet file (its footer: schema, row groups), its INT96 timestamps read as ``read_parquet`` does."""
    return pq.ParquetFile(source, coerce_int96_timestamp_unit=INT96_UNIT)


def parquet_format() -> ds.ParquetFileFormat:
    """The Parquet format for a dataset of logs, its INT96 timestamps read as ``read_parquet`` does."""
    return ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit=INT96_UNIT))


def arrow_name(path: str | os.PathLike[str]) -> str | None:
    """The text naming ``path`` for a pyarrow reader that takes text only (a dataset): its bytes read as
    UTF-8, which pyarrow turns back into the same bytes; None where they are not UTF-8."""
    try:
        return os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return None
