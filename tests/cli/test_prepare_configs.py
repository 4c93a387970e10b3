"""`ctr prepare` over a repository without the role models' configs: one line before any training starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.regular_file import NOT_REGULAR
from tests.support.checkout import ROOT
from tests.support.ctr_process import CTR
from tests.support.full_disk import full_disk_command, needs_full_disk
from tests.support.tiny_esmm_config import TINY_ESMM
from tests.support.tiny_model import publish_tiny_esmm


def prepare(
    *args: str, cwd: Path, full_disk: Path | None = None, first: str = "", timeout: float = 120, **settings: str
) -> subprocess.CompletedProcess:
    """``ctr prepare ARGS`` in ``cwd``, with the folder ``full_disk`` (where given) on a full disk, the Python
    source ``first`` run before it (a stand-in for a failing disk)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **settings}  # else no CTR_* settings: the defaults
    command = [sys.executable, "-c", f"{first}\nfrom cli.main import app; app()", "prepare", *args]
    command = command if full_disk is None else full_disk_command(full_disk, command)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


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


def test_a_misspelt_variable_is_warned_of_as_ctr_serve_warns_of_it(tmp_path):
    """``CTR_CTR_MODL=ctr ctr prepare`` said "nothing to train" alone: the ctr model silently not trained."""
    publish_tiny_esmm(tmp_path / "repository")
    done = prepare("-r", "repository", "--work-dir", "work", cwd=tmp_path, CTR_CTR_MODL="ctr")
    assert done.returncode == 0 and "nothing to train" in done.stdout, (done.stdout, done.stderr)
    assert done.stderr.count("CTR_CTR_MODL is not a setting; ignored (did you mean CTR_CTR_MODEL?)") == 1, done.stderr


def test_a_version_that_is_not_whole_counts_as_none(tmp_path):
    """A power loss after a publish could leave model.onnx empty: the service refuses the version for good (its
    sha256), and prepare said "every served model has an exported version: nothing to train", each pointing at
    the other. With no config to train from, that is said now."""
    repository = tmp_path / "repository"
    publish_tiny_esmm(repository)
    (repository / "esmm" / "1" / "model.onnx").write_bytes(b"")
    done = prepare("-r", "repository", "--work-dir", "work", cwd=tmp_path)
    assert done.returncode == 2 and "no whole exported version to serve" in done.stderr, (done.stdout, done.stderr)


def test_a_version_with_a_fifo_for_its_model_is_said_not_whole_and_trained_beside_within_seconds(tmp_path):
    """sha256_file's open waited for a writer: ``ctr prepare`` (and ``make run``) hung without a word. The version
    cannot be served (the service refuses it), so it is not whole, as one of another sha256 is: a new version is
    trained beside it, the line says why. (A file in the work folder's way ends the command before training.)"""
    repository = tmp_path / "repository"
    publish_tiny_esmm(repository)
    (repository / "esmm" / "config.toml").write_text(TINY_ESMM, encoding="utf-8")
    (repository / "esmm" / "1" / "model.onnx").unlink()
    os.mkfifo(repository / "esmm" / "1" / "model.onnx")  # no writer ever: the code before hung here for good
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "esmm").write_text("", encoding="utf-8")
    done = prepare("-r", "repository", "--work-dir", "work", cwd=tmp_path, timeout=60)
    assert done.stdout.startswith(
        "[1/1] no exported version of esmm (no version of esmm is whole; its newest, repository/esmm/1: model.onnx "
        f"{NOT_REGULAR}): training on the built-in world simulator"
    ), (done.stdout, done.stderr)
    assert done.returncode == 2 and "work/esmm" in done.stderr and "training + exporting" not in done.stdout


# a failing disk's EIO where prepare reads the model esmm: listing its folder, or hashing a version's file
EIO_LISTING = """import errno, os, pathlib
listed = pathlib.Path.iterdir
def iterdir(self):
    if self.name == "esmm":
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(self))
    return listed(self)
pathlib.Path.iterdir = iterdir"""
EIO_READING = """import errno, os, common.repository
def sha256_file(path):
    raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
common.repository.sha256_file = sha256_file"""


@pytest.mark.parametrize(("first", "path"), [(EIO_LISTING, "esmm"), (EIO_READING, "esmm/1/model.onnx")])
def test_storage_failing_under_the_repository_is_one_line_and_no_training(tmp_path, first, path):
    """A model folder that could not be listed ended in a 90-line traceback; a version's file that could not be
    read made the version "not whole", and prepare trained and published a duplicate on the failing disk (here,
    with no config, refused for want of one)."""
    repository = tmp_path / "repository"
    publish_tiny_esmm(repository)
    done = prepare("-r", "repository", "--work-dir", "work", cwd=tmp_path, first=first, timeout=60)
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"error: repository/{path}: Input/output error: the storage there failed (a disk's error, a network mount "
        "gone stale or not answering): check it (dmesg, the mount) and run the command again"
    ]


def test_the_repository_is_the_one_ctr_serve_serves(tmp_path):
    """``CTR_MODEL_REPOSITORY=/srv/models make run``: prepare checked (and trained) ./models, then the service
    served the variable's repository, empty; --repository still comes first."""
    publish_tiny_esmm(tmp_path / "served")
    (tmp_path / "models").mkdir()  # the default: it has no config, so looking here is refused
    done = prepare("--work-dir", "work", cwd=tmp_path, CTR_MODEL_REPOSITORY=str(tmp_path / "served"))
    assert done.returncode == 0 and f"exported version in {tmp_path / 'served'}:" in done.stdout, done.stderr
    done = prepare("-r", "models", cwd=tmp_path, CTR_MODEL_REPOSITORY=str(tmp_path / "served"))
    assert done.returncode == 2 and "no config for the served model esmm (models/esmm" in done.stderr
    assert "the repository is --repository's" in done.stderr
    done = prepare(cwd=tmp_path, CTR_MODEL_REPOSITORY="models")
    assert done.returncode == 2 and "the repository is CTR_MODEL_REPOSITORY's" in done.stderr


def test_a_repository_that_is_a_file_names_the_option(tmp_path):
    (tmp_path / "models.txt").write_text("")
    done = prepare("-r", "models.txt", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: invalid settings: --repository: "), done.stderr


def test_a_work_folder_that_cannot_take_a_models_log_is_said_before_any_process_starts(tmp_path):
    """The second model's log folder was made after the first model's process had started: the error line
    ended the launcher, and that process trained on, orphaned."""
    import shutil

    for name in ("esam", "esmm"):
        (tmp_path / "repository" / name).mkdir(parents=True)
        shutil.copy(ROOT / "models" / name / "config.toml", tmp_path / "repository" / name / "config.toml")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "esmm").write_text("", encoding="utf-8")  # a file where esmm's log folder goes
    done = prepare("-r", "repository", "--work-dir", "work", cwd=tmp_path)
    orphans = processes_working_in(tmp_path)
    for pid in orphans:
        os.kill(pid, 9)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "work/esmm" in done.stderr, done.stderr
    assert "training + exporting" not in done.stdout
    assert orphans == []


@needs_full_disk
def test_a_failure_whose_log_holds_nothing_says_so(tmp_path):
    """A full work folder: the training process could not write its error to its log either, and the line
    said "its log: .../esmm/prepare.log" of an empty file (after an empty line, the log's "last lines")."""
    (tmp_path / "repository" / "esmm").mkdir(parents=True)  # esmm fills both roles: it alone is trained
    (tmp_path / "repository" / "esmm" / "config.toml").write_text(TINY_ESMM, encoding="utf-8")
    (tmp_path / "work").mkdir()
    done = prepare("-r", "repository", "--work-dir", "work", cwd=tmp_path, full_disk=tmp_path / "work")
    assert done.returncode == 1, done.stderr
    assert re.fullmatch(
        r"\[1/1\] esmm failed after \d+ s \(exit code \d+\); its log work/esmm/prepare\.log holds nothing of this "
        r"run \(could it be written\? is the disk full\?\)\n",
        done.stderr,
    ), done.stderr


def processes_working_in(folder: Path) -> list[int]:
    """The living processes whose working directory is ``folder``."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if Path(os.readlink(cwd)) == folder and alive(int(cwd.parent.name)):
                found.append(int(cwd.parent.name))
        except OSError:  # ended while listed, or not ours to read
            continue
    return found


def test_sigterm_stops_the_training_processes(tmp_path):
    """Python's default SIGTERM ended `ctr prepare` at once: its training processes went on under init."""
    import shutil
    import signal

    from tests.support.wait import eventually

    (tmp_path / "repository" / "esmm").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "esmm" / "config.toml", tmp_path / "repository" / "esmm" / "config.toml")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    command = [*CTR, "prepare", "-r", "repository"]
    launcher = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    trainers: list[int] = []
    try:
        assert "training + exporting esmm" in launcher.stdout.readline() + launcher.stdout.readline()
        trainers = eventually(lambda: living_children(launcher.pid), 30, "no training process")
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=30) == 128 + signal.SIGTERM
        eventually(lambda: not any(alive(pid) for pid in trainers), 30, "a training process outlived its launcher")
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in trainers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_sigterm_as_a_training_process_starts_leaves_none_behind(tmp_path):
    """The launcher recorded a training process only once its start had returned: a SIGTERM landing as the
    process appeared (before the record) orphaned it, training on under init, 14 times in 20 on this VM. The
    signal is sent the moment the process shows in /proc, five times."""
    import shutil
    import signal

    (tmp_path / "repository" / "esmm").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "esmm" / "config.toml", tmp_path / "repository" / "esmm" / "config.toml")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    command = [*CTR, "prepare", "-r", "repository"]
    left: list[int] = []
    for _ in range(5):
        launcher = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
        trainers: list[int] = []
        while not trainers and launcher.poll() is None:  # no sleep: the window is a few milliseconds
            trainers = living_children(launcher.pid)
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=60)
        orphans = [pid for pid in trainers if alive(pid)]  # the launcher waits for those it stops: none may remain
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)
        left += orphans
    assert left == [], "a training process outlived its launcher"


def living_children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``, zombies left out."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while listed
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
