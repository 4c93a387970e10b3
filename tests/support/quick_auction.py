"""A ``ctr auction --quick`` run without a service (the base-rate and oracle pipelines: seconds), and a pipeline's
days of its report without their timings, for comparing runs day by day."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def quick_auction(tmp_path: Path, name: str, *args: str) -> dict:
    """The report of ``ctr auction --quick ARGS``, written to ``tmp_path/NAME.json`` with its work dir beside it."""
    out = tmp_path / f"{name}.json"
    result = CliRunner().invoke(
        app,
        ["auction", "--quick", *args, "--out", str(out), "--work-dir", str(tmp_path / name), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))


def outcomes(report: dict, pipeline: str) -> list[list[dict]]:
    """The pipeline's days per seed without their timings (the seconds a scoring took)."""
    return [[{k: v for k, v in d.items() if not k.endswith("seconds")} for d in seed["days"]]
            for seed in report["pipelines"][pipeline]["seeds"]]  # fmt: skip
