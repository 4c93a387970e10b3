"""`ctr experiment esam --quick`: the report's stable keys, the table and the picture."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from cli.main import app
from training.experiments.esam import GROUPS, METRICS, VARIANTS, format_table, summarise


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
            # --quick is one seed: no spread to estimate (null), where the population std wrote 0.0
            assert all(0.0 <= v["mean"] <= 1.0 and v["std"] is None for v in metrics.values())
    assert report["config"]["seeds"] == 1 and report["std_kind"] == "sample (ddof 1)"
    assert set(report["relative_to_baseline"]["ESAM"]) == {"hot_recall@50", "long_tail_recall@50"}
    assert "long_tail" in report["split"] and report["displayed_items"]["long_tail"] >= 0
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ESAM" in result.output and "long_tail" in result.output and "±" not in result.output


def test_the_table_shows_mean_and_sample_std_over_seeds() -> None:
    per_seed = [
        {name: {group: dict.fromkeys(METRICS, value) for group in GROUPS} for name in VARIANTS}
        for value in (0.1, 0.2, 0.6)
    ]
    variants = summarise(per_seed)
    assert variants["ESAM"]["hot"]["recall@50"]["std"] == pytest.approx(math.sqrt(0.07))  # ddof 1, not 0.216
    table = format_table({"variants": variants})
    assert "0.3000 ± 0.2646" in table and len({len(line) for line in table.splitlines()}) == 1
