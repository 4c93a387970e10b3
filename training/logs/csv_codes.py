"""A CSV's categorical columns, read once as text and typed as pyarrow's inference would have typed them.

A categorical feature's cells keep their text (codes with leading zeros, ``007``, are hashed as ``"007"``,
as a request's are), which pyarrow gives only for a column read as text; what the column would otherwise
have been (integers, text, floats, ...) is known only once it is read. The file was read twice, the second
time for the integer columns alone, as text: a whole ``.csv.gz`` decompressed and parsed again. Here those
columns are read once, as bytes, and their inferred type found from that text: integer codes (every cell a
null value of ``ConvertOptions`` or, spaces and tabs around it aside, an int64, as pyarrow's CSV reader parses
it) keep their text with those cells null; text (a cell no number, boolean or time can be) and bytes that are
not UTF-8 are what pyarrow infers them as already; a column of null values alone is null. Anything else
(floats, booleans, dates, times, timestamps in a categorical column) is typed by pyarrow's own inference, on
that column's cells alone (``_typed_as_pyarrow``): they are written as a one-column CSV, each cell quoted, and
read with the same options, so the rules (which words are booleans, which texts times of which unit and zone,
what a float may look like) are pyarrow's, not a copy of them; the file was read again for them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

_DEFAULTS = pacsv.ConvertOptions()
_NULL_VALUES = pa.array(_DEFAULTS.null_values)
_BOOLEAN_WORDS = pa.array([*_DEFAULTS.true_values, *_DEFAULTS.false_values])
_NUMBER_SPACES = " \t"  # what pyarrow's CSV reader trims around a number
# A cell with a character that no number, ISO-8601 date, time or timestamp holds (digits, signs, a point, an
# exponent, T/Z, colons, spaces), and neither a boolean word nor a float's inf/nan, makes the column text.
_NOT_A_NUMBER_OR_TIME = r"[^0-9eEtTzZ:.+\- \t]"
_FLOAT_WORDS = r"^[+-]?(inf|infinity|nan.*)$"
# a quoted cell may hold a line break (as a cell of the log's own CSV may: csv_files.CSV_PARSE); pyarrow reads a quoted
# cell as the same value unquoted, but for the quotes inside it doubled
_QUOTED_CELLS = pacsv.ParseOptions(newlines_in_values=True)
_CELL = "cell"  # the one column's name


def read_as_bytes(names: list[str]) -> dict[str, pa.DataType]:
    """``ConvertOptions.column_types`` for reading the categorical ``names`` as bytes (a name the file lacks
    is ignored by pyarrow)."""
    return dict.fromkeys(names, pa.binary())


def inferred_codes(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column read as bytes, as pyarrow's inference would have typed it, integer codes kept as their text with
    their null values null."""
    try:
        text = column.cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8: pyarrow infers bytes, which the log reader refuses naming the row
        return column
    missing = pc.is_in(text, value_set=_NULL_VALUES)
    cells = pc.filter(text, pc.invert(missing))
    if len(cells) == 0:
        return pa.chunked_array([pa.nulls(len(column))], pa.null())
    if _integers(cells):
        return pc.if_else(missing, pa.scalar(None, pa.string()), text)
    if _holds_text(cells):
        return text
    return _typed_as_pyarrow(text)  # floats, booleans, dates, times, timestamps, or text the test above missed


def _integers(cells: pa.ChunkedArray) -> bool:
    try:
        pc.utf8_trim(cells, _NUMBER_SPACES).cast(pa.int64())
    except pa.ArrowInvalid:
        return False
    return True


def _holds_text(cells: pa.ChunkedArray) -> bool:
    """Whether a cell can be nothing but text, so that pyarrow infers the column as text (a cheap test: in a
    text column the first cells are such a witness; a column without one is typed by pyarrow itself)."""
    foreign = pc.match_substring_regex(cells, _NOT_A_NUMBER_OR_TIME)
    word = pc.or_(
        pc.is_in(cells, value_set=_BOOLEAN_WORDS),
        pc.match_substring_regex(pc.utf8_trim(cells, _NUMBER_SPACES), _FLOAT_WORDS, ignore_case=True),
    )
    return pc.any(pc.and_(foreign, pc.invert(word))).as_py() is True


def _typed_as_pyarrow(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """The UTF-8 cells ``text`` as pyarrow's CSV reader infers and converts them with its default options: the
    cells written one a line, each quoted (its quotes doubled), and read as a one-column CSV. A column's type is
    inferred over all its cells in order, whatever the blocks it is read in, so it is the log's column's type."""
    quote = pa.scalar('"', pa.large_string())
    quoted = pc.binary_join_element_wise(
        quote,
        pc.replace_substring(text.cast(pa.large_string()), '"', '""'),
        pa.scalar('"\n', pa.large_string()),
        pa.scalar("", pa.large_string()),  # joined without a separator
    ).combine_chunks()
    offsets = np.frombuffer(quoted.buffers()[1], np.int64)[quoted.offset : quoted.offset + len(quoted) + 1]
    lines = quoted.buffers()[2][int(offsets[0]) : int(offsets[-1])]  # the cells' bytes, one after the other
    read = pacsv.read_csv(
        pa.BufferReader(lines), read_options=pacsv.ReadOptions(column_names=[_CELL]), parse_options=_QUOTED_CELLS
    )
    return read.column(_CELL)
