"""`ctr experiment esam --quick`: the report's stable keys, the table and the picture."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from cli.main import app
from training.experiments.esam import GROUPS, METRICS, VARIANTS


def test_quick_experiment_writes_report_table_and_plot(tmp_path) -> None:
    out = tmp_path / "reports" / "esam.json"
    result = CliRunner().invoke(app, ["experiment", "esam", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert set(report["variants"]) == set(VARIANTS)
    for groups in report["variants"].values():
        assert set(groups) == set(GROUPS)
        for metrics in groups.values():
            assert set(metrics) == set(METRICS)
            assert all(0.0 <= v["mean"] <= 1.0 and math.isfinite(v["std"]) for v in metrics.values())
    assert set(report["relative_to_baseline"]["ESAM"]) == {"hot_recall@50", "long_tail_recall@50"}
    assert "long_tail" in report["split"] and report["displayed_items"]["long_tail"] >= 0
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ESAM" in result.output and "long_tail" in result.output
