"""Fixtures of the command-line tests that train."""

from __future__ import annotations

import pytest

from tests.support.own_logs import CONFIG_TOML, SPEC_TOML, write_logs


@pytest.fixture
def own_logs(tmp_path) -> list[str]:
    """`ctr train esmm` arguments for tests/support/own_logs.py's tiny CSV (a second or so of training)."""
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text(CONFIG_TOML, encoding="utf-8")
    write_logs(tmp_path / "logs.csv")
    (tmp_path / "spec.toml").write_text(SPEC_TOML, encoding="utf-8")
    return ["--logs", str(tmp_path / "logs.csv"), "--spec", str(tmp_path / "spec.toml"), "--no-progress",
            "-r", str(tmp_path / "models"), "--work-dir", str(tmp_path / "work")]  # fmt: skip
