"""`ctr prepare` over a repository without the role models' configs: one line before any training starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.service.tiny_model import publish_tiny_esmm

ROOT = Path(__file__).resolve().parents[2]


def prepare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}  # no CTR_* settings: the default roles
    command = [sys.executable, "-c", "from cli.main import app; app()", "prepare", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_role_model_without_config_is_refused_before_any_training(tmp_path):
    (tmp_path / "empty").mkdir()
    done = prepare("-r", "empty", "--work-dir", "work", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # no "training + exporting" line
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no config for the served model esmm (empty/esmm/config.toml")
    assert not (tmp_path / "work").exists()  # no training process wrote its log


def test_a_role_model_with_a_version_needs_no_config(tmp_path):
    repository = tmp_path / "repository"
    publish_tiny_esmm(repository)  # version 1 of esmm, which fills both roles; no config
    assert not (repository / "esmm" / "config.toml").exists()
    done = prepare("-r", "repository", "--work-dir", "work", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "every served model has an exported version" in done.stdout
