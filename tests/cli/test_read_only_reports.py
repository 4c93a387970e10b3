"""A report, a benchmark's JSON or logs to be written where no file can be made (a read-only mount) are refused
in one line before the work: the shape of ``--out`` alone was checked, so an auction ran its quarter of an hour
(publishing model versions into the live repository) and then ended ``error: ...: Read-only file system``; a
benchmark's ``--out`` was not checked at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ctr_process import ctr, one_error_line
from tests.support.read_only_mount import needs_read_only_mount

pytestmark = needs_read_only_mount


@pytest.mark.parametrize(
    ("command", "written"),
    [
        (("bench", "hotpath", "--out"), "reports/hotpath.json"),
        (("bench", "serve", "--quick", "--out"), "bench.json"),
        (("auction", "--quick", "--out"), "auction.json"),
        (("evaluate", "esmm", "--out"), "evaluation.json"),
        (("simulate", "--days", "1", "--requests-per-day", "100", "--out"), "logs.parquet"),
        (("simulate", "--shards", "2", "--rows-per-shard", "100", "--out"), "shards"),
    ],
)
def test_an_output_no_file_can_be_made_for_is_refused_before_the_work(tmp_path: Path, command, written):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    done = ctr(*command, str(read_only / written), cwd=tmp_path, read_only=read_only)
    assert one_error_line(done) == f"error: {read_only / written}: Read-only file system"
    assert done.stdout == ""  # no table, no progress: nothing was run first
