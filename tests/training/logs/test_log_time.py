"""A log's ``ts`` read as time (training/logs/log_time.py) by the in-memory and the streamed reader alike: ISO-8601
text, epoch numbers in mixed units, files whose ``ts`` types differ, and Spark's INT96 timestamps."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from common.features import Feature, FeatureSpec
from training.logs.log_quality import warn_of_log_quality
from training.logs.log_statistics import chunk_statistics, merge_in_order
from training.logs.reading import read_joined_logs, read_logs
from training.logs.stream import ShardedLogs

SPEC = FeatureSpec((Feature("site", "categorical", "context", buckets=8),))
DAY = 86_400
START = int(datetime.datetime(2024, 3, 9, 12, tzinfo=datetime.UTC).timestamp())  # the Saturday before US DST began
ROWS = 50  # per file, one every 10 minutes: a file is a few hours


def log(ts: pa.Array) -> pa.Table:
    rows = len(ts)
    return pa.table(
        {
            "ts": ts,
            "site": ["a", "b"] * (rows // 2),
            "position": [1] * rows,
            "click": [0, 1] * (rows // 2),
            "conversion": [0] * rows,
        }
    )


def seconds(day: int) -> np.ndarray:
    return START + day * DAY + 600 * np.arange(ROWS)


def warnings_of(path, caplog) -> tuple[list[str], list[str]]:
    """What the in-memory trainer and the streamed one's statistics pass warn of the logs at ``path``."""
    caplog.set_level(logging.WARNING)
    caplog.clear()
    read = read_joined_logs(path, SPEC)
    warn_of_log_quality(read.table, SPEC, path, read.rows)
    in_memory = [record.getMessage() for record in caplog.records]
    caplog.clear()
    logs = ShardedLogs(path, SPEC)
    merge_in_order([(g, chunk_statistics(logs, g, SPEC)) for g in range(len(logs.groups))]).warn_of_log_quality(
        SPEC, logs
    )
    return in_memory, [record.getMessage() for record in caplog.records]


def iso(values: np.ndarray) -> list[str]:
    return [datetime.datetime.fromtimestamp(int(v), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for v in values]


def test_iso_text_ts_in_parquet_is_checked_for_time_order_as_the_same_csv_is(tmp_path, caplog):
    """pyarrow reads a CSV's ISO-8601 column as timestamps, which were checked, but kept a Parquet's as text, which
    was not: day 1 then day 0 trained without a word and validated on the oldest day. Text that is no time says
    once that the order went unchecked, and why."""
    reversed_days = iso(np.concatenate([seconds(1), seconds(0)]))
    table = log(pa.array(reversed_days))
    pq.write_table(table, tmp_path / "log.parquet", row_group_size=ROWS // 2)  # the drop between row groups
    pacsv.write_csv(table, tmp_path / "log.csv")
    said = "are not in time order: ts goes back at 1 row (row 50)"
    in_memory, streamed = warnings_of(tmp_path / "log.parquet", caplog)
    assert [said in m for m in in_memory] == [True] and [said in m for m in streamed] == [True]
    caplog.clear()
    warn_of_log_quality(read_logs(tmp_path / "log.csv", SPEC), SPEC, "csv")
    assert said in caplog.text
    pq.write_table(log(pa.array(["9/3/2024"] * ROWS)), tmp_path / "us.parquet", row_group_size=ROWS // 2)
    in_memory, streamed = warnings_of(tmp_path / "us.parquet", caplog)
    unchecked = "was not checked: ts holds text that is not an ISO-8601 time (Failed to parse string: '9/3/2024'"
    assert [unchecked in m for m in in_memory] == [True] and [unchecked in m for m in streamed] == [True]


BETWEEN = "(between two files: the last ts of part-0.parquet, at row 49, is in "


@pytest.mark.parametrize(
    ("first", "then", "said"),
    [
        (seconds(0), seconds(1) * 1000, f"{BETWEEN}seconds, the first of part-1.parquet, at row 0, in milliseconds)"),
        (seconds(0) * 1000, seconds(1), f"{BETWEEN}milliseconds, the first of part-1.parquet, at row 0, in seconds)"),
        (
            seconds(0),
            np.r_[seconds(1)[:-3], seconds(1)[-3:] * 1000],
            "at 1 row (row 47 of part-1.parquet: milliseconds after seconds)",
        ),
        (
            seconds(0) + 0.25,
            (seconds(1) + 0.25) * 1e6,
            f"{BETWEEN}seconds, the first of part-1.parquet, at row 0, in microseconds)",
        ),
    ],
)
def test_a_change_of_ts_unit_is_named_as_such_not_as_rows_out_of_order(tmp_path, caplog, first, then, said):
    """Milliseconds after seconds (a shard from another writer, or rows at the tail, read as year 130,000) went
    unsaid, and seconds after milliseconds was "not in time order ... sort the logs by ts", which sorting cannot
    mend. Each value is read in the epoch unit that puts it between 2000 and 2100, in which a log written in one
    unit stays, and a change of unit is named, between files or within one, at the row in its file (not the
    row of the files joined: row 97 was row 47 of the second file)."""
    (tmp_path / "logs").mkdir()
    pq.write_table(log(pa.array(first)), tmp_path / "logs" / "part-0.parquet")
    pq.write_table(log(pa.array(then)), tmp_path / "logs" / "part-1.parquet")
    for messages in warnings_of(tmp_path / "logs", caplog):
        assert (
            len(messages) == 1
            and "write ts in more than one unit: read as epoch times between 2000 and 2100" in (messages[0])
        )
        assert said in messages[0] and "not in time order" not in messages[0]


def day_folders(folder: Path, days: list[np.ndarray], write=pq.write_table, suffix: str = "parquet") -> Path:
    """A Hive-partitioned log: ``day=1/part-0.SUFFIX``, ``day=2/part-0.SUFFIX``, ... each of ``log(ts)``, one
    file name in every folder."""
    for day, ts in enumerate(days, 1):
        (folder / f"day={day}").mkdir(parents=True)
        write(log(pa.array(ts)), folder / f"day={day}" / f"part-0.{suffix}")
    return folder


def test_ts_going_back_is_named_in_its_file_or_between_two_files(tmp_path, caplog):
    """The warning named a row of the files joined ("row 57": the 8th row of the second file), which no user can
    find, in a folder whose files share a name. It names the row in its file, by the file's path below the folder
    given, and a later file that starts before the one before it ends as such: sorting its rows mends nothing."""
    swapped = seconds(1)
    swapped[[7, 8]] = swapped[[8, 7]]
    logs = day_folders(tmp_path / "within", [seconds(0), swapped])
    for messages in warnings_of(logs, caplog):
        assert messages == [
            f"the logs {logs} are not in time order: ts goes back at 1 row (row 8 of "
            "day=2/part-0.parquet): the validation rows are the last in file order, not the latest; sort the logs by ts"
        ]
    logs = day_folders(tmp_path / "between", [seconds(1), seconds(0)])
    for messages in warnings_of(logs, caplog):
        assert messages == [
            f"the logs {logs} are not in time order: ts goes back at 1 row (between two files: the last ts "
            "of day=1/part-0.parquet, at row 49, is later than the first of day=2/part-0.parquet, at row 0): the "
            "validation rows are the last in file order, not the latest; sort the logs by ts (a folder's or a glob's "
            "files are read in the order of their paths, numbers in them read as numbers)"
        ]
    assert warnings_of(logs / "day=2" / "part-0.parquet", caplog) == ([], [])  # one file, in order


def test_a_csv_row_ts_goes_back_at_is_named_with_its_line_in_its_file(tmp_path, caplog):
    """In a CSV the row is named with the line an editor shows, counted in its own file (a quoted line break
    above it moves it down one line); a glob's files are named by their paths as it gives them."""
    swapped = seconds(1)
    swapped[[7, 8]] = swapped[[8, 7]]

    def with_a_line_break(table: pa.Table, path: Path) -> None:
        sites = table.column("site").to_pylist()
        pacsv.write_csv(table.set_column(1, "site", pa.array(["a\nb", *sites[1:]])), path)

    logs = day_folders(tmp_path / "logs", [seconds(0), swapped], with_a_line_break, "csv")
    caplog.set_level(logging.WARNING)
    for given, file in [(logs, "day=2/part-0.csv"), (logs / "*" / "part-0.csv", logs / "day=2" / "part-0.csv")]:
        caplog.clear()
        read = read_joined_logs(given, SPEC)
        warn_of_log_quality(read.table, SPEC, given, read.rows)
        assert f"ts goes back at 1 row (row 8 (line 11 of the CSV) of {file}):" in caplog.text


def times(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    """Epoch seconds as ``kind``: a timestamp (its zone changes how it is shown, not the instant) or a date."""
    if pa.types.is_date(kind):
        return pa.array(values // DAY, pa.int32()).cast(pa.date32())
    return pa.array(values, pa.int64()).cast(pa.timestamp("s", tz=getattr(kind, "tz", None))).cast(kind)


NEW_YORK, UTC = pa.timestamp("s", tz="America/New_York"), pa.timestamp("ms", tz="UTC")


@pytest.mark.parametrize(
    ("later", "earlier"),
    [(UTC, NEW_YORK), (NEW_YORK, UTC), (pa.timestamp("s"), UTC), (pa.date32(), pa.timestamp("us")), (UTC, pa.date32())],
)
def test_files_whose_ts_are_times_of_different_types_are_read_as_utc_instants(tmp_path, caplog, later, earlier):
    """A zone in one file and another (or none) in the next, or a date beside a timestamp, refused the whole log
    ("Cannot merge timestamps with differing timezones") in `ctr train` and `ctr evaluate`, though no model reads
    ts; they are instants, so the day after written first is still found out of order."""
    (tmp_path / "logs").mkdir()
    pq.write_table(log(times(seconds(1), later)), tmp_path / "logs" / "part-0.parquet")
    pq.write_table(log(times(seconds(0), earlier)), tmp_path / "logs" / "part-1.parquet")
    assert (
        pa.types.is_timestamp(kind := read_logs(tmp_path / "logs", SPEC).schema.field("ts").type) and kind.tz == "UTC"
    )
    for messages in warnings_of(tmp_path / "logs", caplog):
        assert len(messages) == 1 and "are not in time order: ts goes back at 1 row (between two files" in (messages[0])


@pytest.mark.parametrize(
    ("one", "other", "named"),
    [
        (pa.array(seconds(0)), times(seconds(1), UTC), "int64 (day=1/part-0.parquet) and timestamp[ms, tz=UTC]"),
        (pa.array(iso(seconds(0))), times(seconds(1), UTC), "string (day=1/part-0.parquet) and timestamp[ms, tz=UTC]"),
    ],
)
def test_files_whose_ts_cannot_be_made_alike_leave_it_out_of_the_order_check_saying_so_once(
    tmp_path, caplog, one, other, named
):
    """A number beside a timestamp has no unit to read it in: the log was refused; ts is now left out, said once,
    while a feature whose types differ is still refused. The files are named as the other warnings about a folder
    name them, by their paths below it (each file's full path followed the folder's own)."""
    for day in (1, 2):
        (tmp_path / "logs" / f"day={day}").mkdir(parents=True)
    pq.write_table(log(one), tmp_path / "logs" / "day=1" / "part-0.parquet")
    pq.write_table(log(other), tmp_path / "logs" / "day=2" / "part-0.parquet")
    assert "ts" not in read_logs(tmp_path / "logs", SPEC).column_names
    for messages in warnings_of(tmp_path / "logs", caplog):
        assert len(messages) == 1 and messages[0].startswith(
            f"the logs {tmp_path / 'logs'}: its files hold ts as {named} (day=2/part-0.parquet), which cannot"
        )
        assert "ts is left out of the time-order check" in messages[0]
    for messages in warnings_of(tmp_path / "logs" / "*" / "*.parquet", caplog):  # a glob's files, as it gave them
        as_given = named.replace("day=1/", f"{tmp_path / 'logs' / 'day=1'}/")
        assert len(messages) == 1 and f"its files hold ts as {as_given} ({tmp_path / 'logs' / 'day=2'}/" in messages[0]
    pq.write_table(
        log(other).set_column(1, "site", pa.array([1, 2] * (ROWS // 2))), tmp_path / "logs" / "day=2" / "part-0.parquet"
    )
    with pytest.raises(ValueError, match=r"day=2/part-0\.parquet disagrees with \S*logs/day=1/part-0\.parquet"):
        read_logs(tmp_path / "logs", SPEC)


def test_spark_int96_timestamps_past_2262_are_read_as_written(tmp_path, caplog):
    """pyarrow reads Spark's legacy INT96 timestamps in nanoseconds by default, which hold no time past 2262: a
    ts of 2300 came back as about 1715 and was blamed on the rows' order."""
    written = [datetime.datetime(2299, 12, 31), datetime.datetime(2300, 1, 1)] * (ROWS // 2)
    table = log(pa.array(sorted(written), pa.timestamp("us")))
    pq.write_table(table, tmp_path / "log.parquet", use_deprecated_int96_timestamps=True, row_group_size=ROWS // 2)
    assert read_logs(tmp_path / "log.parquet", SPEC).column("ts").to_pylist() == sorted(written)
    logs = ShardedLogs(tmp_path / "log.parquet", SPEC)
    assert logs.read(logs.spans(0, logs.rows)[-1], ["ts"]).column("ts")[-1].as_py() == datetime.datetime(2300, 1, 1)
    assert warnings_of(tmp_path / "log.parquet", caplog) == ([], [])
