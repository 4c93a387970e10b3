"""How a log's ``ts`` is read as time. No model trains on it: the time-order check alone reads it (``Disorder``).

Warehouses and exports write ``ts`` many ways: epoch numbers (seconds, or milliseconds from Java and
JavaScript), timestamps with a zone or without, dates, ISO-8601 text. Text is parsed (a CSV's was already
read as a timestamp, a Parquet's was never checked); a number is read in the epoch unit that puts it between
2000 and 2100 (those bands lie 1000-fold apart, so a log written in one unit never leaves its band, and a
value in another band is a unit mixed up, which sorting cannot mend); files whose ``ts`` are times of
different types are read as UTC timestamps (one without a zone taken as UTC), and files whose ``ts`` cannot
be made alike leave ``ts`` out of the check rather than refuse a log no model reads ``ts`` of.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from training.logs.arrow_types import is_number, is_text
from training.logs.row_words import file_in_log

logger = logging.getLogger(__name__)

TS = "ts"
EPOCH_YEARS = (2000, 2100)  # a ts read as an epoch time must fall within these years (inclusive) to have a unit
# each epoch unit with its ticks per second, coarsest first
EPOCH_UNITS = {"seconds": 1, "milliseconds": 10**3, "microseconds": 10**6, "nanoseconds": 10**9}
_EPOCH_BAND = tuple(
    datetime.datetime(year, 1, 1, tzinfo=datetime.UTC).timestamp() for year in EPOCH_YEARS
)  # in seconds
_NANOSECONDS = 10**9
_UNITS_FINEST_LAST = ("s", "ms", "us", "ns")


class TimeReading(NamedTuple):
    """A ``ts`` column read for the order check: its non-null values as instants that compare in time order."""

    rows: np.ndarray  # the rows holding a value, in order
    instants: pa.Array  # their values, comparable (numbers each scaled to nanoseconds from its own unit)
    units: np.ndarray  # per value, its index in EPOCH_UNITS (-1: none, or not a number)
    unchecked: str  # why ``ts`` could not be read as time ("" where it could, or its type is no time at all)


def read_times(column: pa.ChunkedArray) -> TimeReading:
    """``column`` (a log's ``ts``) read as instants: numbers in their epoch unit (``epoch_units``), timestamps and
    dates as they are, text parsed as ISO-8601 (``text_instants``); other types (structs, lists) are nothing to
    compare, and text that does not parse says why."""
    column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    nothing = TimeReading(np.zeros(0, np.int64), pa.array([], pa.int64()), np.zeros(0, np.int8), "")
    if is_text(column.type):
        try:
            column = text_instants(column)
        except pa.ArrowInvalid as error:
            said = str(error).splitlines()[0]
            return nothing._replace(
                unchecked=f"ts holds text that is not an ISO-8601 time ({said}); write it as one (2024-03-09T12:00:00Z)"
            )
    if not (is_number(column.type) or pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)):
        return nothing
    rows = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
    known = column.drop_null()
    if not is_number(column.type):
        return TimeReading(rows, known, np.full(len(known), -1, np.int8), "")
    exact = pa.types.is_integer(known.type) and not pa.types.is_uint64(known.type)  # int64 holds 2100 in ns
    values = known.cast(pa.int64() if exact else pa.float64()).to_numpy(zero_copy_only=False)
    units = epoch_units(values)
    to_nanoseconds = np.array([_NANOSECONDS // ticks for ticks in EPOCH_UNITS.values()], values.dtype)
    scaled = values * np.where(units >= 0, to_nanoseconds[units.clip(0)], 1)  # a value of no unit as it is
    return TimeReading(rows, pa.array(scaled), units, "")


def text_instants(column: pa.Array) -> pa.Array:
    """Text as UTC timestamps: ISO-8601 with a zone (``2024-03-09T12:00:00Z``, ``...-05:00``) or, every value
    without one, taken as UTC (``2024-03-09 12:00:00``, ``2024-03-09``); ArrowInvalid naming a value that is
    neither, or a column mixing the two."""
    utc = pa.timestamp("us", tz="UTC")
    try:
        return column.cast(utc)
    except pa.ArrowInvalid:
        return column.cast(pa.timestamp("us")).cast(utc)  # a timestamp without a zone holds UTC: Arrow's reading


def epoch_units(values: np.ndarray) -> np.ndarray:
    """Per value, the index in ``EPOCH_UNITS`` of the unit in which it is an epoch time within ``EPOCH_YEARS``,
    -1 where there is none (a small number, 0, a value past 2100 even in nanoseconds)."""
    units = np.full(values.shape, -1, np.int8)
    low, high = _EPOCH_BAND
    for index, ticks in enumerate(EPOCH_UNITS.values()):
        units[(values >= low * ticks) & (values <= high * ticks)] = index
    return units


class JoinedTs(NamedTuple):
    """How the ``ts`` of a log's files are joined: cast to ``kind`` (None: as unified_schema joins them), or
    left out of the log, saying why (``left_out``)."""

    kind: pa.DataType | None = None
    left_out: str = ""

    def schema(self, schema: pa.Schema) -> pa.Schema:
        """``schema`` with its ``ts`` joined so."""
        if TS not in schema.names or not (self.kind or self.left_out):
            return schema
        index = schema.get_field_index(TS)
        return schema.remove(index) if self.left_out else schema.set(index, schema.field(index).with_type(self.kind))

    def table(self, table: pa.Table) -> pa.Table:
        """``table`` with its ``ts`` joined so."""
        if TS not in table.column_names or not (self.kind or self.left_out):
            return table
        if self.left_out:
            return table.drop_columns([TS])
        index = table.schema.get_field_index(TS)
        column = table.column(index)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return table.set_column(index, table.field(index).with_type(self.kind), column.cast(self.kind))


def joined_ts(schemas: list[tuple[Path, pa.Schema]], given: Path) -> JoinedTs:
    """How the ``ts`` of files with these schemas, of the log given as ``given``, are joined: times of different
    types (zones, units, dates) as UTC timestamps of the finest unit among them; types that cannot be made alike
    (a number beside a timestamp, text beside one) left out, naming two files that differ as the other warnings
    about the log name them (``file_in_log``: below the folder given, where its full path was named in each);
    others as the permissive join reads them (int32 beside int64)."""
    typed = [(file, _value_type(schema.field(TS).type)) for file, schema in schemas if TS in schema.names]
    kinds = [kind for _, kind in typed if not pa.types.is_null(kind)]
    if len(set(kinds)) <= 1:
        return JoinedTs()
    if all(pa.types.is_timestamp(kind) or pa.types.is_date(kind) for kind in kinds):
        return JoinedTs(pa.timestamp(max((_unit(kind) for kind in kinds), key=_UNITS_FINEST_LAST.index), tz="UTC"))
    try:
        pa.unify_schemas([pa.schema([(TS, kind)]) for kind in kinds], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        (first, one), (other, two) = typed[0], next((f, k) for f, k in typed if k != typed[0][1])
        return JoinedTs(
            left_out=f"its files hold ts as {one} ({file_in_log(first, given)}) and {two} "
            f"({file_in_log(other, given)}), which cannot be read as one "
            "time: ts is left out of the time-order check (no model trains on it); write it alike to have it checked"
        )
    return JoinedTs()


def say_ts_left_out(source: object, why: str) -> None:
    """The one warning of a log whose files' ``ts`` could not be joined (``joined_ts``)."""
    logger.warning("the logs %s: %s", source, why)


def _value_type(kind: pa.DataType) -> pa.DataType:
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _unit(kind: pa.DataType) -> str:
    """A timestamp's unit; a date's as the timestamp it casts to exactly (date32: seconds, date64: milliseconds)."""
    if pa.types.is_timestamp(kind):
        return kind.unit
    return "ms" if pa.types.is_date64(kind) else "s"
