"""`ctr train`'s stdout is its metrics' JSON alone (a pipeline's audit): `ctr train NAME > metrics.json` and
`ctr train NAME | jq` read it, where the "checkpoint: ..." and export lines printed after the JSON broke both."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.export_line import read_export_line
from cli.main import app
from common.repository import read_manifest


def test_train_export_prints_the_metrics_json_alone_and_says_the_rest_on_stderr(tmp_path, own_logs):
    result = CliRunner().invoke(app, ["train", "esmm", "--export", *own_logs])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)  # the whole of stdout: one JSON document
    published = read_manifest(tmp_path / "models", "esmm", 1).metrics  # the training's, and the export's parity
    assert metrics["ctr_auc"] == published["ctr_auc"] and metrics.items() <= published.items()
    assert f"checkpoint: {tmp_path / 'work' / 'esmm' / 'checkpoint.pt'}\n" in result.stderr
    assert read_export_line(result.stderr.splitlines()) == (1, True)  # what `ctr prepare` reads of its log
