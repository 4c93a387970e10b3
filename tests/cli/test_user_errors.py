"""A user's mistake ends `ctr` with one line on stderr naming it and what to do, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CTR = [sys.executable, "-c", "from cli.main import app; app()"]
ROOT = Path(__file__).resolve().parents[2]


def ctr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([*CTR, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "absent", "--no-progress"], "ctr new absent --kind KIND"),
        (["sample-request"], "run from the repository root or pass --repository"),
        (["new", "mine", "--kind", "nonsense"], "unknown model kind 'nonsense': pass --kind with one of"),
        (["spec", "infer", "--logs", "absent.parquet"], "no impression log at absent.parquet"),
    ],
)
def test_user_mistakes_print_one_line(tmp_path, args, expected):
    done = ctr(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_missing_log_column_is_named(tmp_path):
    (tmp_path / "logs.csv").write_text("site,position,click\na,1,0\nb,2,1\n")
    done = ctr("spec", "infer", "--logs", str(tmp_path / "logs.csv"), cwd=tmp_path)
    assert done.returncode == 2 and "lacks the columns ['conversion']" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_kind_in_a_config_is_named_before_any_work(tmp_path):
    (tmp_path / "models" / "bad").mkdir(parents=True)
    (tmp_path / "models" / "bad" / "config.toml").write_text('kind = "esmn"\n')
    done = ctr("train", "bad", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2 and "says kind = 'esmn', which is unknown: set it to one of" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
