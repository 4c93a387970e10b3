"""A small ESMM trained on the world simulator and exported by the CLI, shared by the e2e tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

TINY_ESMM_CONFIG = """
kind = "esmm"
[model]
embedding_dim = 6
hidden = [32, 16]
[training]
epochs = 1
batch_size = 512
learning_rate = 0.003
[data]
days = 4
requests_per_day = 5000
heldout_requests = 3000
[world]
seed = 0
n_users = 2000
n_ads = 500
"""


@pytest.fixture(scope="session")
def world_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository holding esmm version 1, trained on simulated logs by `ctr train` + `ctr export`."""
    root = tmp_path_factory.mktemp("world") / "models"
    (root / "esmm").mkdir(parents=True)
    (root / "esmm" / "config.toml").write_text(TINY_ESMM_CONFIG)
    work = root.parent / "work"
    runner = CliRunner()
    for command in (["train", "esmm", "--no-progress"], ["export", "esmm"]):
        result = runner.invoke(app, [*command, "--repository", str(root), "--work-dir", str(work)])
        assert result.exit_code == 0, result.output + repr(result.exception)
    return root
