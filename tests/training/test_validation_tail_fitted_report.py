"""`reports/validation_tail_fitted.py` (docs/results.md) runs to its end: it wrote its report, then stopped with a
TypeError printing a metric that is not one number (``validation_by_epoch``, the log-loss differences with their
intervals, which ``fit`` added to the metrics after the script was written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.checkout import ROOT


def test_the_documented_script_prints_both_sides_and_exits_0(tmp_path) -> None:
    out = tmp_path / "validation_tail_fitted.json"
    command = [sys.executable, "reports/validation_tail_fitted.py", "--days", "1", "--requests-per-day", "600"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*command, "--hidden", "8", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    whole = report["whole_log"]["metrics"]
    assert isinstance(whole["validation_by_epoch"], list)  # what the print used to stop on
    lines = done.stdout.splitlines()
    assert lines[-1] == f"wrote {out}"
    printed = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert "validation_by_epoch" not in printed
    assert float(printed["ctr_auc"][0]) == round(whole["ctr_auc"], 5)
    assert float(printed["ctr_auc"][1]) == round(report["training_rows_only"]["metrics"]["ctr_auc"], 5)
    assert float(printed["b_inference"][0]) == round(report["whole_log"]["constants"]["b_inference"], 5)
