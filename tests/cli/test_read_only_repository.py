"""A model repository on a read-only mount (a locked-down container's): every command that would write a
version says so in one line naming the model's folder, and those that train say it before any training.

Each command ended in a rich traceback of 58-133 lines, ``OSError: [Errno 30] Read-only file system:
'.../esmm/.staging-…'``, exit 1, where a folder the user may not write was one line, exit 2; ``ctr prepare``
and ``ctr train --export`` found it only at the export, after the whole training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ctr_process import ctr, one_error_line
from tests.support.read_only_mount import needs_read_only_mount
from tests.support.tiny_esmm_config import TINY_ESMM

pytestmark = needs_read_only_mount


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A repository holding the tiny esmm's config, no version (a run of the code before the check trained it,
    then failed at the export)."""
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text(TINY_ESMM, encoding="utf-8")
    return tmp_path / "models"


def test_export_and_new_into_a_read_only_repository_are_one_line(tmp_path, models):
    trained = ctr("train", "esmm", "-r", str(models), "--work-dir", "work", "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    done = ctr("export", "esmm", "-r", str(models), "--work-dir", "work", cwd=tmp_path, read_only=models)
    assert one_error_line(done) == f"error: {models / 'esmm'}: Read-only file system"  # not a hidden staging name
    assert sorted(path.name for path in models.iterdir()) == ["esmm"]


@pytest.mark.parametrize("repository", ["models", "models/new"])
def test_new_in_a_read_only_repository_names_the_folder_that_refused(tmp_path, models, repository):
    """It said ``models/tiny2: Read-only file system``, naming a folder that does not exist; the one that
    refused is ``models`` (for ``-r models/new``, which does not exist either, too)."""
    done = ctr("new", "tiny2", "--kind", "esmm", "-r", repository, cwd=tmp_path, read_only=models)
    made = Path(repository, "tiny2").relative_to("models").parts[0]
    assert one_error_line(done) == (
        f"error: models: Read-only file system, so {made}/ cannot be made in it: pass -r with a folder you may write"
    )
    assert sorted(path.name for path in models.iterdir()) == ["esmm"]


def test_train_into_a_read_only_work_folder_is_one_line(tmp_path, models):
    """The default work folder, ``artifacts``, inside a read-only tree: a double traceback (the mkdir's
    FileNotFoundError, then its OSError)."""
    done = ctr("train", "esmm", "--no-progress", cwd=tmp_path, read_only=tmp_path)
    assert one_error_line(done) == "error: artifacts: Read-only file system"


def test_train_with_export_refuses_a_read_only_repository_before_training(tmp_path, models):
    args = ("train", "esmm", "-r", str(models), "--work-dir", "work", "--export", "--no-progress")
    done = ctr(*args, cwd=tmp_path, read_only=models)
    assert one_error_line(done) == f"error: {models / 'esmm'}: Read-only file system"
    assert done.stdout == "" and not (tmp_path / "work").exists()  # nothing simulated, no checkpoint


def test_prepare_refuses_a_read_only_repository_before_any_training_process(tmp_path, models):
    """README: a role's model without a config "is refused before any process starts"; an unwritable
    repository now is too."""
    done = ctr("prepare", "-r", str(models), "--work-dir", "work", cwd=tmp_path, read_only=models)
    assert one_error_line(done) == f"error: {models / 'esmm'}: Read-only file system"
    assert done.stdout == "" and not (tmp_path / "work").exists()  # no "training + exporting" line, no log
