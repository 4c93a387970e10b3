"""A small debiased ESMM and a small adversarial CTR model trained on the world simulator and exported by
the CLI, shared by the e2e tests: the repository holds both served roles (ctr -> "ctr", ctcvr -> "esmm"),
both serving the slot-1 position regime."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

TINY_ESMM_CONFIG = """
kind = "esmm_debiased"
[model]
embedding_dim = 6
hidden = [32, 16]
lam = 0.5
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

TINY_CTR_CONFIG = """
kind = "adversarial_ctr"
evaluation = "position_debias"
[model]
lam = 0.9999
embedding_dim = 4
base_hidden = [16, 8]
prediction_hidden = [8]
bias_hidden = [8]
optimizer = "adam"
bias_epochs = 1
[training]
epochs = 1
batch_size = 512
learning_rate = 0.01
[data]
days = 2
requests_per_day = 2000
heldout_requests = 2000
[world]
seed = 0
n_users = 2000
n_ads = 500
"""


@pytest.fixture(scope="session")
def world_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding esmm (debiased, with the adversary) and ctr version 1, trained on simulated logs
    by `ctr train` + `ctr export`."""
    root = tmp_path_factory.mktemp("world") / "models"
    work = root.parent / "work"
    runner = CliRunner()
    for name, config in (("esmm", TINY_ESMM_CONFIG), ("ctr", TINY_CTR_CONFIG)):
        (root / name).mkdir(parents=True)
        (root / name / "config.toml").write_text(config)
        for command in (["train", name, "--no-progress"], ["export", name]):
            result = runner.invoke(app, [*command, "--repository", str(root), "--work-dir", str(work)])
            assert result.exit_code == 0, result.output + repr(result.exception)
    return root
