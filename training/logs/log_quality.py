"""What a trainer warns of in a log it will train on, in memory or streamed: rows out of time order or with
``ts`` changing unit, impressions logged twice (``Disorder``), and optional features the log has no column for
(``defaulted_features``). None of them stops a training, so they are said apart from the reading of the log
(training/logs/reading.py), which refuses what no model can train on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.features import FeatureSpec
from common.log_columns import LABEL_COLUMNS
from common.plural import counted, the_first
from training.logs.arrow_types import is_groupable
from training.logs.log_time import EPOCH_UNITS, EPOCH_YEARS, TS, read_times
from training.logs.row_words import NO_FILES, JoinedRows

logger = logging.getLogger(__name__)

# said where ts goes back between two files: their order is their paths' (training/logs/files.py, log_files)
FILE_ORDER = " (a folder's or a glob's files are read in the order of their paths, numbers in them read as numbers)"


def warn_of_log_quality(table: pa.Table, spec: FeatureSpec, source: str | Path, rows: JoinedRows = NO_FILES) -> None:
    """The in-memory trainer's warnings about a log it will train on (``say_log_quality``; ``rows``: where the
    table's rows lie in the log's files); copies are rows alike in what the streamed trainer reads too: the
    spec's features and the labels."""
    read = [name for name in [*(f.name for f in spec.features), *LABEL_COLUMNS] if name in table.column_names]
    say_log_quality(Disorder.of(table, read), table.column_names, spec, source, rows)


def say_log_quality(
    disorder: Disorder, names: Sequence[str], spec: FeatureSpec, source: str | Path, rows: JoinedRows = NO_FILES
) -> None:
    """The warnings about a log a trainer will train on, in memory or streamed: out of time order or doubled
    (``Disorder``, its rows named in their files: ``rows``), and optional features it has no column for
    (``defaulted_features``; ``names``: its columns)."""
    disorder.warn(source, rows)
    defaulted = defaulted_features(names, spec)
    if defaulted:
        logger.warning(
            "the logs %s have no column for the optional features %s: each row reads its default", source, defaulted
        )


def defaulted_features(names: Sequence[str], spec: FeatureSpec) -> list[str]:
    """The spec's optional features a log with the columns ``names`` lacks: each row reads the feature's
    default, so a model learns nothing from it, and an evaluation scores every row as if it held the default."""
    return [f.name for f in spec.features if not f.required and f.name not in names]


@dataclass(frozen=True)
class Disorder:
    """Where a log's ``ts`` goes back in time or changes unit, and how many impressions (``request_id`` and
    ``position``) appear twice: the trainer holds out the last rows as the latest (``split_by_time``), so an
    export without ORDER BY validated on its oldest day, and a doubled one on copies of training rows, without a
    word. Neither column is required, nor is ``ts`` of one type: it is read as time by ``read_times`` (numbers
    in their epoch unit, timestamps, dates, ISO-8601 text; text that is not says why it went unchecked), over
    its non-null values, and rows without a ``request_id`` are no impression named twice. Summaries of
    consecutive row groups join (``then``) into the whole log's, so the streamed trainer finds the same time
    disorder, across row groups and shards, without holding the log; doubled impressions it finds within a row
    group only."""

    rows: int = 0
    backs: int = 0  # rows whose ts is earlier than the last known ts before them
    first_back: int | None = None  # the first such row, counted from the first row
    first_back_after: int | None = None  # the row of the last known ts before it (another file's, or its own's)
    first_ts: pa.Scalar | None = None  # the first and the last non-null (comparable) ts
    first_ts_row: int | None = None
    last_ts: pa.Scalar | None = None
    last_ts_row: int | None = None
    unit_changes: int = 0  # rows whose epoch unit differs from the last known unit before them
    first_unit_change: int | None = None  # the first such row
    first_unit_change_after: int | None = None  # the row of the last known unit before it
    changed_units: tuple[int, int] | None = None  # the units before and at it (EPOCH_UNITS indexes)
    first_unit: int | None = None  # the first and the last known epoch unit (an EPOCH_UNITS index)
    first_unit_row: int | None = None
    last_unit: int | None = None
    last_unit_row: int | None = None
    unchecked: str = ""  # why ts could not be read as time (text that is no ISO-8601 time)
    doubled: int = 0  # rows at a (request_id, position) an earlier row holds
    copies: int = 0  # ... and alike in every compared column (of ``doubled``): the same impression twice

    @classmethod
    def of(cls, table: pa.Table, alike: Sequence[str] | None = None) -> Disorder:
        """The table's disorder; ``alike``: the columns a copy of a row repeats (default: all but ts, which a
        row logged twice may not repeat), those of a type Arrow cannot group by left out."""
        names, found = table.column_names, {}
        if TS in names:
            rows, known, units, unchecked = read_times(table.column(TS))
            earlier = known.slice(0, max(len(known) - 1, 0))
            back = np.flatnonzero(pc.less(known.slice(1), earlier).to_numpy(zero_copy_only=False))
            found = {"backs": int(back.size), "unchecked": unchecked}
            if back.size:
                found |= {"first_back": int(rows[back[0] + 1]), "first_back_after": int(rows[back[0]])}
            if len(known):
                found |= {"first_ts": known[0], "first_ts_row": int(rows[0])}
                found |= {"last_ts": known[-1], "last_ts_row": int(rows[-1])}
            united, unit_rows = units[units >= 0], rows[units >= 0]
            changes = np.flatnonzero(united[1:] != united[:-1])
            found["unit_changes"] = int(changes.size)
            if changes.size:
                found["first_unit_change"] = int(unit_rows[changes[0] + 1])
                found["first_unit_change_after"] = int(unit_rows[changes[0]])
                found["changed_units"] = (int(united[changes[0]]), int(united[changes[0] + 1]))
            if united.size:
                found |= {"first_unit": int(united[0]), "first_unit_row": int(unit_rows[0])}
                found |= {"last_unit": int(united[-1]), "last_unit_row": int(unit_rows[-1])}
        if "request_id" in names:
            slot = ["request_id", "position"]
            compared = [n for n in (names if alike is None else alike) if n not in (TS, *slot)]
            compared = [n for n in compared if is_groupable(table.schema.field(n).type)]
            valid = pc.is_valid(table.column("request_id"))
            named = table.select(slot).filter(valid)
            found["doubled"] = named.num_rows - named.group_by(slot).aggregate([]).num_rows
            if found["doubled"]:  # (no slot held twice, no copy: the wide grouping, ~1.4 s a million rows, spared)
                named = table.select([*slot, *compared]).filter(valid)
                found["copies"] = named.num_rows - named.group_by([*slot, *compared]).aggregate([]).num_rows
        return cls(rows=table.num_rows, **found)

    def then(self, later: Disorder) -> Disorder:
        """The summary of these rows followed by ``later``'s."""

        def shifted(row: int | None) -> int | None:
            return None if row is None else self.rows + row

        crossing = None not in (self.last_ts, later.first_ts) and pc.less(later.first_ts, self.last_ts).as_py()
        if self.first_back is not None:
            first_back = (self.first_back, self.first_back_after)
        elif crossing:
            first_back = (shifted(later.first_ts_row), self.last_ts_row)
        else:
            first_back = (shifted(later.first_back), shifted(later.first_back_after))
        unit_crossing = None not in (self.last_unit, later.first_unit) and self.last_unit != later.first_unit
        if self.first_unit_change is not None:
            first_unit_change = (self.first_unit_change, self.first_unit_change_after, self.changed_units)
        elif unit_crossing:
            changed_units = (self.last_unit, later.first_unit)
            first_unit_change = (shifted(later.first_unit_row), self.last_unit_row, changed_units)
        else:
            first_unit_change = (
                shifted(later.first_unit_change),
                shifted(later.first_unit_change_after),
                later.changed_units,
            )
        first, first_unit = self.first_ts is not None, self.first_unit is not None
        last, last_unit = later.last_ts is not None, later.last_unit is not None
        return Disorder(
            rows=self.rows + later.rows,
            backs=self.backs + bool(crossing) + later.backs,
            first_back=first_back[0],
            first_back_after=first_back[1],
            first_ts=self.first_ts if first else later.first_ts,
            first_ts_row=self.first_ts_row if first else shifted(later.first_ts_row),
            last_ts=later.last_ts if last else self.last_ts,
            last_ts_row=shifted(later.last_ts_row) if last else self.last_ts_row,
            unit_changes=self.unit_changes + bool(unit_crossing) + later.unit_changes,
            first_unit_change=first_unit_change[0],
            first_unit_change_after=first_unit_change[1],
            changed_units=first_unit_change[2],
            first_unit=self.first_unit if first_unit else later.first_unit,
            first_unit_row=self.first_unit_row if first_unit else shifted(later.first_unit_row),
            last_unit=later.last_unit if last_unit else self.last_unit,
            last_unit_row=shifted(later.last_unit_row) if last_unit else self.last_unit_row,
            unchecked=self.unchecked or later.unchecked,
            doubled=self.doubled + later.doubled,
            copies=self.copies + later.copies,
        )

    def warn(self, source: object, rows: JoinedRows = NO_FILES) -> None:
        """The warnings, each row named in its file (``rows``: where the summarised rows lie in the log's files;
        none: the rows of ``source`` itself)."""
        if self.unchecked:  # a row group's text parsed, another's not: what was compared is no whole log's order
            logger.warning("the time order of the logs %s was not checked: %s", source, self.unchecked)
        elif self.backs:
            between = _between_files(rows, self.first_back_after, self.first_back)
            if between:
                where = the_first(self.backs) + (
                    f"between two files: the last ts of {between[0]}, is later than the first of {between[1]}"
                )
            else:
                where = f"{the_first(self.backs)}{_row_in_log(rows, self.first_back)}"
            logger.warning(
                "the logs %s are not in time order: ts goes back at %s (%s): the validation rows are the last "
                "in file order, not the latest; sort the logs by ts%s",
                source,
                counted(self.backs, "row"),
                where,
                FILE_ORDER * bool(between),
            )
        if self.unit_changes:
            before, after = (list(EPOCH_UNITS)[unit] for unit in self.changed_units)
            between = _between_files(rows, self.first_unit_change_after, self.first_unit_change)
            if between:
                where = the_first(self.unit_changes) + f"between two files: the last ts of {between[0]}, is in "
                where += f"{before}, the first of {between[1]}, in {after}"
            else:
                row = _row_in_log(rows, self.first_unit_change)
                where = f"{the_first(self.unit_changes)}{row}: {after} after {before}"
            logger.warning(
                "the logs %s write ts in more than one unit: read as epoch times between %d and %d, it changes unit "
                "at %s (%s), which no log written in one unit does; sorting does not mend it: write ts in one "
                "unit (the order check reads each value in its own)",
                source,
                *EPOCH_YEARS,
                counted(self.unit_changes, "row"),
                where,
            )
        if self.copies:
            logger.warning(
                "the logs %s hold %d impressions twice or more (the same request_id, position, features and "
                "labels): copies land on both sides of the validation split, so deduplicate the logs; unless they "
                "are different ads no feature tells apart, whose slots must then be numbered 1, 2, ... instead",
                source,
                self.copies,
            )
        if self.doubled - self.copies:
            logger.warning(
                "the logs %s hold %d impressions at a request_id and position another impression of the request "
                "holds, with other features or labels (different ads sharing a slot): positions must tell a "
                "request's slots apart, else the position model cannot learn; number each request's slots 1, 2, ...",
                source,
                self.doubled - self.copies,
            )


def _between_files(rows: JoinedRows, before: int | None, at: int | None) -> tuple[str, str] | None:
    """Where the joined rows ``before`` and ``at`` lie in different files, each as "day=1/part-0.csv, at row 99
    (line 101 of the CSV)": ts went back, or changed unit, from the last known value of one file to the first
    of a later one; None within one file."""
    if before is None or at is None or rows.file(before) == rows.file(at):
        return None
    return f"{rows.file_name(before)}, at {rows.named(before)}", f"{rows.file_name(at)}, at {rows.named(at)}"


def _row_in_log(rows: JoinedRows, row: int) -> str:
    """A joined row as a warning about the log names it: in its file, which is named unless the log is that
    file ("row 7 (line 9 of the CSV) of day=2/part-0.csv")."""
    name = rows.file_name(row)
    return rows.named(row) if name is None else f"{rows.named(row)} of {name}"
