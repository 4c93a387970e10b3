"""`reports/torchrun_exits.py`, the loop behind docs/scale.md's count of aborts at exit, runs as that page gives it:
one two-process run of its tiny world, counted in its report."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.report_script import run_report_script


def test_the_report_runs_and_counts_its_run(tmp_path: Path) -> None:
    out = tmp_path / "torchrun_exits.json"
    result = run_report_script("torchrun_exits.py", "--runs", "1", "--out", str(out), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["runs"] == 1
    assert report["failed"] == len(report["failures"]) <= 1
    assert report["command"] == "PYTHONPATH=. python reports/torchrun_exits.py --runs 1"
