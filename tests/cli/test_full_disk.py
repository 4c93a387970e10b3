"""A disk that fills under a command: one line naming what was being written and what to do, exit 1 (the
machine's trouble, not a mistake of the command line's, which exits 2), nothing half-written left.

``ctr export`` into a full repository ended in a 117-line traceback whose last line, ``OSError: [Errno 28] No
space left on device``, named no file; ``ctr simulate`` in 100 lines."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

from cli.errors import full_disk_line
from tests.support.checkout import ROOT
from tests.support.ctr_process import CTR
from tests.support.full_disk import full_disk_command, needs_full_disk
from tests.support.tiny_esmm_config import TINY_ESMM

pytestmark = needs_full_disk


# the command, then what the full folder $0 holds once it ended (listed inside the mount, which ends with it)
AND_LIST = 'code=0; "$@" || code=$?; echo "held:"; ls -A1 "$0"; exit $code'


def ctr(*args: str, cwd: Path, full: Path | None = None) -> subprocess.CompletedProcess:
    command = [*CTR, *args] if full is None else full_disk_command(full, ["sh", "-c", AND_LIST, str(full), *CTR, *args])
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def held(done: subprocess.CompletedProcess) -> list[str]:
    """What the full folder held after the command (the filler aside)."""
    return sorted(set(done.stdout.split("held:\n")[-1].split()) - {".filler"})


def the_line(done: subprocess.CompletedProcess) -> str:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 1 and "Traceback" not in done.stderr and len(errors) == 1, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == errors[0]
    return errors[0]


def test_logs_written_onto_a_full_disk_are_one_line_and_no_file(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    out = full / "logs.parquet"
    done = ctr("simulate", "--days", "1", "--requests-per-day", "2000", "--out", str(out), cwd=tmp_path, full=full)
    assert the_line(done) == (
        f"error: No space left on device (while writing {out}): free space there (or write elsewhere) and run the "
        "command again"
    )
    assert held(done) == []  # no temporary file taking the last space


def test_a_version_exported_onto_a_full_disk_is_one_line_naming_the_model_and_not_published(tmp_path):
    models = tmp_path / "models"
    (models / "esmm").mkdir(parents=True)
    (models / "esmm" / "config.toml").write_text(TINY_ESMM, encoding="utf-8")
    trained = ctr("train", "esmm", "-r", str(models), "--work-dir", "work", "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    done = ctr("export", "esmm", "-r", str(models), "--work-dir", "work", cwd=tmp_path, full=models / "esmm")
    assert the_line(done) == (
        f"error: No space left on device (while writing a version of esmm in {models / 'esmm'}): free space there "
        "(or write elsewhere) and run the command again"
    )
    assert held(done) == ["config.toml"]  # no version 1, no staging folder


def test_a_model_started_on_a_full_disk_leaves_no_empty_config_behind(tmp_path):
    """``ctr new`` left an empty models/NAME/config.toml: the retry was refused ("config.toml exists: pick
    another NAME"), and training read the empty file."""
    models = tmp_path / "models"
    models.mkdir()
    done = ctr("new", "mine", "--kind", "esmm", "-r", str(models), cwd=tmp_path, full=models)
    assert the_line(done).startswith("error: No space left on device (while writing ")
    assert held(done) == []  # the model's folder, which the command made, is gone


def test_a_model_folder_there_before_keeps_what_it_held(tmp_path):
    """A folder there before (a model's versions, no config) is not the command's to remove: only what it wrote goes."""
    mine = tmp_path / "models" / "mine"
    (mine / "1").mkdir(parents=True)
    done = ctr("new", "mine", "--kind", "esmm", "-r", str(tmp_path / "models"), cwd=tmp_path, full=mine)
    assert the_line(done).startswith("error: No space left on device (while writing ")
    assert held(done) == ["1"]


def test_a_checkpoint_written_onto_a_full_disk_is_one_line(tmp_path):
    """torch.save says a full disk as ``RuntimeError: [enforce fail at inline_container.cc:672] . unexpected
    pos 64 vs 0``, with no errno: the command ended in its traceback."""
    models = tmp_path / "models"
    (models / "esmm").mkdir(parents=True)
    (models / "esmm" / "config.toml").write_text(TINY_ESMM, encoding="utf-8")
    shards = tmp_path / "logs"
    made = ctr("simulate", "--out", str(shards), "--shards", "2", "--rows-per-shard", "3000", cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    work = tmp_path / "work"
    (work / "esmm").mkdir(parents=True)
    logs = ("--logs", str(shards), "--spec", str(shards / "_spec.toml"))
    done = ctr("train", "esmm", "-r", str(models), *logs, "--work-dir", str(work), "--no-progress", cwd=tmp_path,
               full=work / "esmm")  # fmt: skip
    checkpoint = work / "esmm" / "checkpoint.pt"
    assert the_line(done).startswith(f"error: No space left on device (while writing {checkpoint}): free space")
    assert held(done) == []  # no temporary checkpoint left taking the space


def test_the_line_names_what_the_writer_said_it_wrote_not_its_temporary_file() -> None:
    """shutil.copyfile's ENOSPC names the destination, a hidden temporary file the user never named
    (``.spec.toml.4242.tmp``); the note the writer added names the file it was writing."""
    error = OSError(errno.ENOSPC, "No space left on device", "/m/.spec.toml.4242.tmp")
    error.add_note("(while writing /m/spec.toml)")
    assert full_disk_line(error).startswith("No space left on device (while writing /m/spec.toml): free space")
    bare = OSError(errno.ENOSPC, "No space left on device", "/m/report.json")
    assert full_disk_line(bare).startswith("/m/report.json: No space left on device: free space")
