"""A tiny ESAM trained on a small world by `ctr train esam` and exported by `ctr export esam`."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

TINY_ESAM_CONFIG = """
kind = "esam"
[model]
feature_dim = 4
hidden = [16]
embedding_dim = 8
[training]
epochs = 1
batch_size = 64
validation_fraction = 0.1
[queries]
train_queries = 400
eval_queries = 50
n_targets = 4
[retrieval]
n_candidates = 20
n_slots = 5
n_relevant = 20
[world]
seed = 0
n_users = 300
n_ads = 200
n_advertisers = 40
"""


def publish_tiny_esam(root: Path, name: str = "esam") -> Path:
    """Train and export ``name`` into the repository ``root``; returns its version 1 directory."""
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "config.toml").write_text(TINY_ESAM_CONFIG)
    work = root.parent / f"work-{name}"
    runner = CliRunner()
    for command in (["train", name, "--no-progress"], ["export", name]):
        result = runner.invoke(app, [*command, "--repository", str(root), "--work-dir", str(work)])
        assert result.exit_code == 0, result.output + repr(result.exception)
    return root / name / "1"


@functools.cache
def tiny_esam_version() -> Path:
    """One trained + exported tiny ESAM per test session (a version directory to copy from)."""
    root = Path(tempfile.mkdtemp(prefix="tiny-esam-")) / "models"
    atexit.register(shutil.rmtree, root.parent, True)
    return publish_tiny_esam(root)


def add_tiny_esam(repository: Path, name: str = "esam") -> Path:
    """Copy the session's tiny ESAM into ``repository`` as ``name`` version 1."""
    source = tiny_esam_version()
    shutil.copytree(source.parent, repository / name)
    return repository / name / "1"
