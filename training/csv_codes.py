"""A CSV's categorical columns, read once as text and typed as pyarrow's inference would have typed them.

A categorical feature's cells keep their text (codes with leading zeros, ``007``, are hashed as ``"007"``,
as a request's are), which pyarrow gives only for a column read as text; what the column would otherwise
have been (integers, text, floats, ...) is known only once it is read. The file was read twice, the second
time for the integer columns alone, as text: a whole ``.csv.gz`` decompressed and parsed again. Here those
columns are read once, as bytes, and their inferred type found from that text: integer codes (every cell a
null value of ``ConvertOptions`` or, spaces and tabs around it aside, an int64, as pyarrow's CSV reader parses
it) keep their text with those cells null; text (a cell no number, boolean or time can be) and bytes that are
not UTF-8 are what pyarrow infers them as already; a column of null values alone is null. Anything else
(floats, booleans, dates in a categorical column) is left to pyarrow itself: ``inferred_codes`` names it
and the caller reads it again with inference (what the old way read once, as it read every column).
"""

from __future__ import annotations

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


def read_as_bytes(names: list[str]) -> dict[str, pa.DataType]:
    """``ConvertOptions.column_types`` for reading the categorical ``names`` as bytes (a name the file lacks
    is ignored by pyarrow)."""
    return dict.fromkeys(names, pa.binary())


def inferred_codes(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """A column read as bytes, as pyarrow's inference would have typed it, integer codes kept as their text with
    their null values null; None where that takes pyarrow's own inference (a column of floats, booleans,
    dates, ...)."""
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
    return None


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
