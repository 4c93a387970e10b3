"""Several writers on one model repository and one work folder (an operator audit): each `ctr train --export`
publishes the checkpoint it trained, `ctr export` says whether it published, a stopped export leaves no staging
folder, and two `ctr prepare` runs keep each other's log lines."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli.export_line import read_export_line
from cli.main import app
from common.repository import read_manifest, versions
from tests.support.checkout import ROOT
from tests.support.esmm_checkpoint import checkpoint
from training.training_files import checkpoint_path

TINY_CONFIG = 'kind = "esmm"\n[model]\nhidden = [32, 16]\n'  # esmm_checkpoint's checkpoint's


def test_train_export_publishes_the_checkpoint_it_trained_not_the_file_s(tmp_path, own_logs, monkeypatch):
    """Two `ctr train esmm --export` runs sharing a work dir: each exported whatever work/esmm/checkpoint.pt held
    when it read it, so one training was never published, yet both said "exported esmm version 1"."""
    import training.pipeline

    real_train = training.pipeline.train
    trained = []

    def train_then_another_run_saves(*args, **kwargs):
        trained.append(real_train(*args, **kwargs))
        other = dataclasses.replace(trained[0], metrics={"ctr_auc": -1.0})  # the other run's, saved just after
        other.save(checkpoint_path(tmp_path / "work", "esmm"))
        return trained[0]

    monkeypatch.setattr(training.pipeline, "train", train_then_another_run_saves)
    result = CliRunner().invoke(app, ["train", "esmm", "--export", *own_logs])
    assert result.exit_code == 0, result.output
    published = read_manifest(tmp_path / "models", "esmm", 1).metrics
    assert published["ctr_auc"] == trained[0].metrics["ctr_auc"] != -1.0


def test_export_says_already_held_of_a_version_another_process_published_meanwhile(tmp_path, monkeypatch):
    """`ctr export` read the versions before the publishing lock: another process publishing the same checkpoint
    meanwhile made its "not published again" warning sit beside stdout's "exported esmm version 1", and
    `ctr prepare` read "exported as version ?" of the line for that case."""
    import training.export

    repository = tmp_path / "models"
    (repository / "esmm").mkdir(parents=True)
    (repository / "esmm" / "config.toml").write_text(TINY_CONFIG, encoding="utf-8")
    checkpoint().save(checkpoint_path(tmp_path / "work", "esmm"))
    real_check_parity = training.export.check_parity
    others = []

    def another_process_publishes_first(*args, **kwargs):  # while this export writes, before it takes the lock
        if not others:
            others.append(None)
            others.append(training.export.export_checkpoint(checkpoint(), repository))
        return real_check_parity(*args, **kwargs)

    monkeypatch.setattr(training.export, "check_parity", another_process_publishes_first)
    result = CliRunner().invoke(app, ["export", "esmm", "-r", str(repository), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    assert others[-1] == 1 and versions(repository, "esmm") == [1]
    assert "exported" not in result.stdout and result.stdout.endswith(") already holds this export\n")
    assert read_export_line(result.stdout.splitlines()) == (1, False)
    from cli.prepare import Job, _exported

    log = tmp_path / "prepare.log"
    log.write_text(f"checkpoint: x\n{result.stdout}", encoding="utf-8")
    assert _exported(Job("esmm", None, log, 0.0, 0)) == "version 1 already holds this export"  # type: ignore[arg-type]
    log.write_text("exported esmm version 3 to models/esmm/3\n", encoding="utf-8")
    assert _exported(Job("esmm", None, log, 0.0, 0)) == "exported as version 3"  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["export", "train"])
def test_a_sigterm_during_an_export_leaves_no_staging_folder(tmp_path, own_logs, command):
    """Python's default SIGTERM (systemd's, Kubernetes', `timeout`'s) ended the export at once: its ``finally``
    never ran and ``.staging-*`` stayed in the model's folder for good."""
    repository, work = tmp_path / "models", tmp_path / "work"
    if command == "export":
        checkpoint().save(checkpoint_path(work, "esmm"))
        (repository / "esmm" / "config.toml").write_text(TINY_CONFIG, encoding="utf-8")
        arguments = ["export", "esmm", "-r", str(repository), "--work-dir", str(work)]
    else:
        arguments = ["train", "esmm", "--export", *own_logs]
    held = (  # the export held in its write, where SIGTERM finds it
        "import sys, time, training.export as export\n"
        "def held(*args, **kwargs):\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "export.check_parity = held\n"
        "from cli.main import app\n"
        "app()\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", held, *arguments], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert "writing" in _line_with(process, "writing")
        assert [p.name for p in (repository / "esmm").glob(".staging-*")]  # the export's, being written
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert sorted(p.name for p in (repository / "esmm").iterdir()) == ["config.toml"]


def _line_with(process: subprocess.Popen, text: str) -> str:
    """The first stdout line of ``process`` holding ``text`` ("" once it ends without one)."""
    for line in process.stdout:
        if text in line:
            return line
    return ""


def test_two_prepare_runs_sharing_a_work_folder_keep_each_other_s_log(tmp_path):
    """`ctr prepare` opened WORK/NAME/prepare.log with "wb": a second run sharing the work folder truncated the
    first's log. Each appends now, and reads only what its own process wrote."""
    from cli.prepare import _start

    (tmp_path / "models").mkdir()
    log = tmp_path / "work" / "esmm" / "prepare.log"
    log.parent.mkdir(parents=True)
    log.write_text("the other run's line\n", encoding="utf-8")
    job = _start("esmm", tmp_path / "models", tmp_path / "work", 0)  # fails at once: no config
    assert job.process.wait(timeout=60) != 0
    assert log.read_text(encoding="utf-8").startswith("the other run's line\n")
    assert "the other run's line" not in job.output() and "config" in job.output()
