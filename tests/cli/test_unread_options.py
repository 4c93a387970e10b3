"""An option that the chosen mode of a command would ignore is refused, naming it, before any work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["simulate", "--shards", "2", "--rows-per-shard", "100", "--days", "30"], "--days is not read with --shards"),
        (
            ["simulate", "--shards", "2", "--rows-per-shard", "100", "--days", "3", "--requests-per-day", "9"],
            "--days and --requests-per-day are not read with --shards",
        ),
        (["train", "esmm", "--workers", "2"], "--workers is not read without --nproc or --distributed"),
        (["train", "esmm", "--statistics", "s.json"], "--statistics is not read without --nproc"),
        (["train", "esmm", "--shuffle-buffer", "10"], "--shuffle-buffer is not read without --nproc"),
        (["train", "esam", "--nproc", "2", "--logs", "d", "--non-displayed", "n"], "--non-displayed is not read by"),
        (
            ["train", "esam", "--spec", "s.toml", "--non-displayed", "n"],
            "--spec and --non-displayed are not read without",
        ),
    ],
)
def test_an_option_the_mode_ignores_is_refused(tmp_path, args, expected):
    out = ["--out", str(tmp_path / "logs")] if args[0] == "simulate" else ["-r", str(tmp_path / "models")]
    result = CliRunner().invoke(app, [*args, *out], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()), result.output
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_the_modes_own_options_are_still_read(tmp_path):
    out = tmp_path / "logs"
    arguments = ["simulate", "--out", str(out), "--shards", "2", "--rows-per-shard", "100", "--seed", "3"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.parquet")) == ["part-00000.parquet", "part-00001.parquet"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["evaluate", "esmm", "--url", "http://127.0.0.1:1"], "--url is not read without `serving`"),
        (["evaluate", "serving", "--url", "http://127.0.0.1:1", "--logs", "h.parquet"], "--logs is not read by"),
        (["evaluate", "esmm", "--version", "0"], "greater than or equal to 1"),
        (["evaluate", "esmm", "--resamples", "50"], "--resamples is not read without --logs"),
        (["evaluate", "serving", "--url", "http://127.0.0.1:1", "--resamples", "50"], "--resamples is not read by"),
        (["evaluate", "esmm", "--logs", "h.parquet", "--resamples", "-1"], "greater than or equal to 0"),
    ],
)
def test_evaluate_refuses_options_of_its_other_mode(tmp_path, args, expected):
    result = CliRunner().invoke(app, [*args, "-r", str(tmp_path)], terminal_width=400)
    assert result.exit_code == 2 and expected in " ".join(result.output.replace("│", " ").split()), result.output


def test_evaluate_names_a_version_that_is_not_exported_before_any_work(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "esmm", "--version", "7", "-r", str(tmp_path)])
    assert result.exit_code != 0 and "model 'esmm' has no version 7; exported: []" in str(result.exception)
