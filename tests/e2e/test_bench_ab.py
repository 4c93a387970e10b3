"""`ctr bench ab` end to end on the tiny trained ESMM: two services up at once, rounds alternated ABBA."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from clients.bench.ab import round_order
from tests.support.checkout import ROOT


def test_rounds_alternate_abba() -> None:
    assert round_order(3) == ["this", "other", "other", "this", "this", "other"]


def test_bench_ab_compares_another_checkout_round_by_round(world_repository: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    for package in ("service", "common"):
        shutil.copytree(ROOT / package, other / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "ab.json"
    arguments = ["bench", "ab", "--service-root", str(other), "--repository", str(world_repository)]
    arguments += ["--rate", "100", "--seconds", "0.5", "--rounds", "2", "--candidates", "3", "--out", str(out)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert report["roots"]["other"] == str(other.resolve())
    for side in ("this", "other"):
        rounds = report["sides"][side]["rounds"]
        assert len(rounds) == 2
        assert all(r["errors"] == 0 and r["ok"] > 0 and r["server_cpu_us_per_request"] > 0 for r in rounds), rounds
        assert all(abs(r["candidates_per_s"] - 3 * r["achieved_rps"]) < 0.5 for r in rounds)  # 3 candidates each
        assert report["sides"][side]["median_cpu_us_per_request"] > 0
    assert report["cpu_ratio_this_over_other"] > 0
    assert "CPU per request, this / other" in result.output


def test_bench_ab_compares_two_repositories_the_other_under_the_interpreter_given(
    world_repository: Path, tmp_path: Path
) -> None:
    """Two exports of a model side by side (--other-repository, no --service-root): this checkout's code on both,
    the other side started by --other-python (here this test's own interpreter, reached through the venv's other
    name for it); each named in the report. (One run for both options: each run starts two servers.)"""
    other = tmp_path / "other_models"
    shutil.copytree(world_repository, other)
    python = str(Path(sys.executable).with_name("python3"))
    out = tmp_path / "ab.json"
    arguments = ["bench", "ab", "--other-repository", str(other), "--other-python", python]
    arguments += ["--repository", str(world_repository), "--rate", "100", "--seconds", "0.5", "--rounds", "1"]
    result = CliRunner().invoke(app, [*arguments, "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert report["roots"]["this"] == report["roots"]["other"]
    assert report["repositories"] == {"this": str(world_repository.resolve()), "other": str(other.resolve())}
    assert report["pythons"]["other"] == f"{python} ({sys.version})"
    assert report["pythons"]["this"] == f"{sys.executable} ({sys.version})"
    assert all(report["sides"][side]["rounds"][0]["errors"] == 0 for side in ("this", "other"))
    assert "--other-repository" in report["command"] and f"--other-python {python}" in report["command"]


def test_bench_ab_refuses_two_identical_sides(world_repository: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "ab", "--repository", str(world_repository)], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "the two sides must differ" in result.output
