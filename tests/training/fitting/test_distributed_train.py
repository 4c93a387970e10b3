"""Training past one process: 2 CPU processes under torchrun (DDP, gloo) on 4 small Parquet shards
export a model whose held-out AUC matches the single-process trainer's; a failure in one process
fails the command with that process's message."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from common.features import FeatureSpec
from common.repository import MODEL_FILE, version_dir, versions
from tests.support.ctr_in_process import ctr_in_process
from tests.support.streamed_esmm_config import STREAMED_ESMM
from tests.support.wait import eventually
from training.evaluation.constant_baseline import constant_key, difference_key
from training.fitting.checkpoint import Checkpoint
from training.fitting.distributed import Processes
from training.fitting.distributed_train import check_before_launch, log_statistics, train_streaming
from training.fitting.epoch_validation import AGAINST_CONSTANT, judged_by
from training.logs.stream import ShardedLogs
from training.model_config import ModelConfig
from training.pipeline import train
from training.world import World, WorldConfig
from training.world.shards import write_shards

TINY_ESMM = STREAMED_ESMM
# Held-out ctr_auc of this model on 4 x 4,000 rows of this world moves with the training seed alone:
# 0.7013-0.7104 in memory and 0.7035-0.7110 streamed by one process (seeds 0-6), 0.7009-0.7062 by two
# (seeds 0, 4, 5, 6), with no offset between the trainers beyond that spread; agreement within 0.02
# says the two trainers learn the same model (an untrained one scores 0.5).
AUC_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("distributed")
    world = World(WorldConfig(seed=0, n_users=2000, n_ads=500))
    write_shards(world, root / "shards", shards=4, rows_per_shard=4000, row_group_rows=1000)
    (root / "models" / "esmm").mkdir(parents=True)
    (root / "models" / "esmm" / "config.toml").write_text(TINY_ESMM)
    return root


def ctr(root: Path, *arguments: str, temporary: Path | None = None) -> subprocess.CompletedProcess:
    """The real command line in a child process (torchrun needs real processes); ``temporary``: its TMPDIR."""
    common = ["--repository", str(root / "models"), "--no-progress"]
    command = [sys.executable, "-m", "cli.main", "train", "esmm", *common, *arguments]
    env = {**os.environ, "TMPDIR": str(temporary)} if temporary is not None else None
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=env)


def test_two_processes_export_a_model_as_good_as_one_process(setup, monkeypatch, capfd):
    """The launcher runs in this process (saving a process's torch import); torchrun and its two processes are
    real ones, their output read by ``capfd``: rank 0's metrics on standard output, their logs as the launcher
    copies them to its standard error."""
    single = CliRunner().invoke(
        app,
        ["train", "esmm", "--logs", str(setup / "shards"), "--repository", str(setup / "models"),
         "--work-dir", str(setup / "single"), "--no-progress"],
    )  # fmt: skip
    assert single.exit_code == 0, single.output + repr(single.exception)
    one = Checkpoint.load(setup / "single" / "esmm" / "checkpoint.pt")

    logs = str(setup / "shards" / "*.parquet")
    result = ctr_in_process(
        monkeypatch, capfd, "train", "esmm", "--repository", str(setup / "models"), "--no-progress",
        "--logs", logs, "--work-dir", str(setup / "ddp"), "--nproc", "2", "--export",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(setup / "models", "esmm") == [1]  # one export, by rank 0 alone
    assert (version_dir(setup / "models", "esmm", 1) / MODEL_FILE).is_file()
    two = Checkpoint.load(setup / "ddp" / "esmm" / "checkpoint.pt")
    assert two.training["processes"] == 2 and two.training["impressions"] == one.training["impressions"] == 16_000
    assert two.spec.features == one.spec.features  # statistics fitted by the streaming pass = the in-memory fit
    for name, stats in one.spec.stats.items():
        assert two.spec.stats[name].mean == pytest.approx(stats.mean, rel=1e-9)
        assert two.spec.stats[name].std == pytest.approx(stats.std, rel=1e-9)
    assert abs(two.metrics["ctr_auc"] - one.metrics["ctr_auc"]) <= AUC_TOLERANCE, (two.metrics, one.metrics)
    assert two.metrics["ctr_auc"] > 0.65  # both learned (an untrained model scores 0.5)
    printed = json.loads(result.stdout[: result.stdout.rindex("}") + 1])  # rank 0 alone prints the metrics
    assert printed["ctr_auc"] == pytest.approx(two.metrics["ctr_auc"])
    # rank 0 scored each epoch, as in memory, and recorded the constant predictor from the label counts
    assert result.stderr.count("validation after epoch 1/2") == result.stderr.count("validation after epoch 2/2") == 1
    assert [record["epoch"] for record in two.metrics["validation_by_epoch"]] == [1, 2]
    # one summary of the training loss, rank 0's, the processes' mean that the metrics record (each said its own)
    summaries = re.findall(r"\d+ epochs, last epoch's loss (\d+\.\d+)", result.stderr)
    assert summaries == [f"{two.metrics['training_loss']:.5f}"], result.stderr
    assert two.metrics["validation_by_epoch"][-1]["ctr_logloss"] == two.metrics["ctr_logloss"]
    for key in ("training_ctr", "ctr_logloss_constant", "training_ctcvr", "ctcvr_logloss_constant"):
        assert two.metrics[key] == pytest.approx(one.metrics[key], rel=1e-12)
    # and each judged log loss minus the constant, paired over the same held-out rows (the models differ, the rows not)
    for label, keys in AGAINST_CONSTANT.items():
        key = difference_key(judged_by(one.metrics, keys))
        assert {k: two.metrics[key][k] for k in ("positives", "rows")} == {
            k: one.metrics[key][k] for k in ("positives", "rows")
        }, label
        constant = two.metrics[constant_key(f"{label}_logloss")]
        assert two.metrics[key]["value"] == pytest.approx(two.metrics[judged_by(two.metrics, keys)] - constant)

    # a later run reads the statistics instead of streaming the log for them
    again = CliRunner().invoke(
        app,
        ["train", "esmm", "--logs", logs, "--repository", str(setup / "models"), "--work-dir", str(setup / "again"),
         "--distributed", "--statistics", str(setup / "ddp" / "esmm" / "statistics.json"), "--no-progress"],
    )  # fmt: skip
    assert again.exit_code == 0, again.output + repr(again.exception)
    assert Checkpoint.load(setup / "again" / "esmm" / "checkpoint.pt").spec == two.spec


def test_a_failure_in_one_process_fails_the_command_with_its_message(setup, tmp_path):
    broken = tmp_path / "shards"
    broken.mkdir()
    for shard in sorted((setup / "shards").glob("part-*.parquet")):
        table = pq.read_table(shard)
        if shard.name == "part-00003.parquet":  # its last row group (read by one process only): a bad row
            click = table.column("click").to_numpy()
            conversion = table.column("conversion").to_numpy().copy()
            conversion[[i for i in range(len(click)) if click[i] == 0][-1]] = 1
            table = table.set_column(table.column_names.index("conversion"), "conversion", pa.array(conversion))
        pq.write_table(table, broken / shard.name, row_group_size=1000)
    spec = str(setup / "shards" / "_spec.toml")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    work = str(tmp_path / "work")
    result = ctr(setup, "--logs", str(broken), "--spec", spec, "--work-dir", work, "--nproc", "2", temporary=temporary)
    assert result.returncode != 0
    assert list(temporary.iterdir()) == []  # torchrun left a torchelastic_* folder of each run in /tmp
    unclicked = (
        r"part-00003\.parquet \(row group 3\) has conversions on unclicked impressions "
        r"\(conversion 1 where click is 0\): 1 row \("
    )
    assert re.search(unclicked, result.stderr)
    last = result.stderr.strip().splitlines()[-1]  # the command ends on the mistake, after torchrun's report
    assert result.returncode == 2
    assert re.match(rf"error: process [01] of 2: impression log .*{unclicked}row \d+\)$", last)
    assert not (tmp_path / "work" / "esmm" / "checkpoint.pt").exists()


def test_mistakes_are_one_line_before_any_process_starts(setup, tmp_path, monkeypatch, capfd, caplog):
    """Checked in the command itself (check_before_launch), not by each of N processes under torchrun. The
    command runs in this process (the refusals are its own, before it would start one): ``capfd`` reads what
    any process it started wrote, and ``caplog`` what it logged, which ``ctr`` would print on stderr too."""
    (tmp_path / "statistics.json").write_text("{}")
    cases = [
        (["--logs", str(tmp_path / "nothing" / "*.parquet")], "no impression log matches"),
        (["--logs", str(setup / "shards"), "--nproc", "3"], "does not split evenly over 3 processes"),
        (["--statistics", str(tmp_path / "statistics.json")], "is not the statistics.json of a streamed run"),
    ]
    for arguments, message in cases:
        command = ["train", "esmm", "--repository", str(setup / "models"), "--no-progress", "--logs"]
        command += [str(setup / "shards"), "--nproc", "2", "--work-dir", str(tmp_path / "work"), *arguments]
        caplog.clear()
        with caplog.at_level(logging.INFO):
            done = ctr_in_process(monkeypatch, capfd, *command)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
        assert "torchrun" not in done.stderr and "process 1 of" not in done.stderr
        assert caplog.records == [], caplog.text


def test_batch_that_does_not_split_over_the_processes_is_refused():
    from training.fitting.distributed_train import per_process_batch

    assert per_process_batch(256, 2) == 128
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        per_process_batch(256, 3)
    assert torch.distributed.is_available()


def test_a_sigterm_to_the_launcher_stops_every_process_and_nothing_is_exported(setup, tmp_path):
    """The launcher ended at once on a SIGTERM sent to it alone (a supervisor's, ``kill PID``): torchrun and
    its processes trained on without it and exported a model. Now the signal is passed on to torchrun, which
    stops them, and the launcher ends with 128 + 15 once they have, on one line saying so (docs/scale.md)."""
    import contextlib
    import os
    import signal

    from clients.bench.machine import descendants

    models = tmp_path / "models"
    (models / "esmm").mkdir(parents=True)
    (models / "esmm" / "config.toml").write_text(TINY_ESMM.replace("epochs = 2", "epochs = 200"))  # minutes
    work = tmp_path / "work"
    command = [sys.executable, "-m", "cli.main", "train", "esmm", "--repository", str(models), "--no-progress"]
    command += ["--logs", str(setup / "shards"), "--work-dir", str(work), "--nproc", "2", "--export"]
    # its own session, so that whatever happens below, the finally can end it and all it started at once
    launcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    family: list[int] = []
    ended = False
    try:

        def begun() -> bool:  # the processes have begun: training follows
            assert launcher.poll() is None, launcher.communicate()
            return (work / "esmm" / "statistics.json").exists()

        eventually(begun, 120, "the processes did not write their statistics")

        def everyone() -> list[int]:  # torchrun and the two processes
            assert launcher.poll() is None, launcher.communicate()
            family[:] = descendants(launcher.pid)[1:]
            return family if len(family) >= 3 else []

        eventually(everyone, 30, lambda: f"torchrun and two processes not all started: {family}")
        os.kill(launcher.pid, signal.SIGTERM)  # to the launcher alone, as a supervisor's ``kill PID``
        _, stderr = launcher.communicate(timeout=120)
        assert launcher.returncode == 128 + signal.SIGTERM, stderr[-2000:]
        # its one line, where torchrun's 20-line traceback of the signal (SignalException) came before it
        assert stderr.splitlines()[-1] == "training on 2 processes stopped by SIGTERM, its processes with it"
        said_by_torchrun = ("Traceback", "SignalException", "death signal", "closing signal")
        assert not [words for words in said_by_torchrun if words in stderr], stderr
        eventually(
            lambda: not [pid for pid in family if Path(f"/proc/{pid}").exists()], 5, lambda: f"left running: {family}"
        )
        ended = True
    finally:
        if not ended:  # nothing left training for minutes after a failure: the group, then any that left it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launcher.pid, signal.SIGKILL)
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            launcher.communicate(timeout=30)
    assert versions(models, "esmm") == []


SMALL_SPEC = """
[[feature]]
name = "row"
kind = "categorical"
side = "candidate"
buckets = 64

[[feature]]
name = "price"
kind = "numeric"
side = "candidate"
required = false
default = 2.0

[[feature]]
name = "site"
kind = "categorical"
side = "context"
buckets = 8
required = false
default = "none"
"""
UNSET = 'kind = "esmm"\n[model]\nembedding_dim = 4\n'  # as `ctr new` writes it: neither epochs nor batch_size


def untidy_shards(folder: Path) -> None:
    """Three shards of 400 rows (row groups of 150) with what the in-memory trainer warns of: the second
    shard earlier than the first, ts going back inside a row group, two ads at one request_id and position in
    one row group, a price of 1e30 among prices near 3, and no column for the optional feature ``site``."""
    folder.mkdir(parents=True)
    rng = torch.Generator().manual_seed(0)
    for shard, hours in enumerate([100, 0, 1000]):
        n = 400
        click = (torch.rand(n, generator=rng) < 0.3).to(torch.int8)
        ts = list(range(hours, hours + n))
        ts[10], ts[11] = ts[11], ts[10]
        request = [f"{shard}-{i}" for i in range(n)]
        request[23] = request[20]  # the same position too
        price = (3 + torch.randn(n, generator=rng)).tolist()
        price[5] = 1e30 if shard == 0 else price[5]
        table = pa.table(
            {
                "request_id": request,
                "ts": pa.array(ts, pa.int64()),
                "row": [str(i % 50) for i in range(n)],
                "price": price,
                "position": pa.array([1 + i % 3 for i in range(n)], pa.int32()),
                "click": pa.array(click.numpy()),
                "conversion": pa.array((click * (torch.rand(n, generator=rng) < 0.5)).numpy()),
            }
        )
        pq.write_table(table, folder / f"part-{shard:05d}.parquet", row_group_size=150)


def test_streamed_training_reads_the_model_s_spec_scales_a_small_log_and_warns_as_in_memory(tmp_path, caplog):
    """The streamed trainer read the manifest's spec over the model's own (and refused a folder without
    one), trained a small log at the configured batch silently and gave none of the log-quality warnings:
    now the two trainers choose, scale and warn alike, the streamed one each warning once."""
    logs, models = tmp_path / "logs", tmp_path / "models"
    untidy_shards(logs)
    (models / "mine").mkdir(parents=True)
    (models / "mine" / "config.toml").write_text(UNSET)
    (models / "mine" / "spec.toml").write_text(SMALL_SPEC)  # as `ctr new mine --spec` keeps it
    said = {}
    for trainer in ("in memory", "streamed"):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            if trainer == "in memory":
                checkpoint = train("mine", models, logs, work_dir=tmp_path / "memory", progress=False)
            else:
                checkpoint = train_streaming("mine", logs, None, models, tmp_path / "stream", None, False, False)
        said[trainer] = [
            r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or "small log" in r.getMessage()
        ]
        assert [f.name for f in checkpoint.spec.features] == ["row", "price", "site"]
        assert (checkpoint.training["batch_size"], checkpoint.training["epochs"]) == (128, 10)
        checkpoint.check_against(ModelConfig.load(models, "mine"), tmp_path)  # `ctr export`: a scaled batch refused it
    # the in-memory trainer alone scores the validation rows against a constant predictor (README: streamed
    # training records none), and this small noisy log trains worse than it
    # the constant predictor's warnings, each trainer's own figures (its model's log loss), once per log loss
    constant = {t: [m for m in said[t] if "predicts worse than a constant" in m] for t in said}
    said = {t: [m for m in said[t] if m not in constant[t]] for t in said}
    judged = {t: [m.split(": its ")[1].split()[0] for m in constant[t]] for t in said}
    assert judged["in memory"] == ["ctr_logloss", "ctcvr_logloss"]  # each its own
    assert set(judged["streamed"]) <= {"ctr_logloss", "ctcvr_logloss"} and len(set(judged["streamed"])) == len(
        judged["streamed"]
    )
    assert sorted(said["streamed"]) == sorted(said["in memory"])  # the same words, each once
    assert [m.split(":")[0] for m in said["in memory"]] == [
        f"the logs {logs} are not in time order",
        f"the logs {logs} hold 3 impressions at a request_id and position another impression of the request holds, "
        "with other features or labels (different ads sharing a slot)",
        f"the logs {logs} have no column for the optional features ['site']",
        "numeric feature 'price'",
        "small log (1080 training rows)",
        "mine trains for only 90 optimiser steps on " + said["in memory"][-1].split(" on ")[1].split(":")[0],
    ]
    assert "ts goes back at 4 rows (the first, row 11 of part-00000.parquet)" in said["in memory"][0]


def test_a_log_of_one_class_is_refused_before_launch_with_its_statistics(tmp_path):
    """With --statistics the shards are checked before torchrun starts: refused there, in one line, the clicks
    counted in the training rows (a pass over the label columns)."""
    logs, models = tmp_path / "logs", tmp_path / "models"
    untidy_shards(logs)
    for path in sorted(logs.glob("*.parquet")):
        table = pq.read_table(path)
        zeros = pa.array([0] * table.num_rows, pa.int8())
        table = table.set_column(table.schema.get_field_index("click"), "click", zeros)
        pq.write_table(table.set_column(table.schema.get_field_index("conversion"), "conversion", zeros), path)
    (models / "mine").mkdir(parents=True)
    (models / "mine" / "config.toml").write_text(UNSET)
    (models / "mine" / "spec.toml").write_text(SMALL_SPEC)
    spec = FeatureSpec.from_toml(models / "mine" / "spec.toml")
    log_statistics(ShardedLogs(logs, spec), spec, Processes(), None).save(tmp_path / "statistics.json")
    with pytest.raises(ValueError, match=r"the training rows .* click is 0 on every row of 1080 impressions"):
        check_before_launch("mine", logs, None, models, 2, tmp_path / "statistics.json")


def test_statistics_of_another_transform_are_refused(tmp_path):
    """A statistics.json's moments are of the values as standardised: fitted without ``transform = "log1p"`` they
    are raw counts' (mean 50, std 500), which a spec now with it would apply to logarithms (every row a sliver
    near one value), and the other way round clip every count past ~12. Read back under a spec whose transform
    differs, it is refused, naming the feature."""
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 400
    table = pa.table(
        {
            "ts": pa.array(range(n), pa.int64()),
            "views": pa.array([float(i % 7) ** 3 for i in range(n)]),
            "position": pa.array([1] * n, pa.int32()),
            "click": pa.array([int(i % 3 == 0) for i in range(n)], pa.int8()),
            "conversion": pa.array([0] * n, pa.int8()),
        }
    )
    pq.write_table(table, logs / "part-0.parquet")
    raw_spec = tmp_path / "raw.toml"
    raw_spec.write_text('[[feature]]\nname = "views"\nkind = "numeric"\nside = "candidate"\n', encoding="utf-8")
    logged_spec = tmp_path / "log1p.toml"
    logged_spec.write_text(raw_spec.read_text(encoding="utf-8") + 'transform = "log1p"\n', encoding="utf-8")
    raw, logged = FeatureSpec.from_toml(raw_spec), FeatureSpec.from_toml(logged_spec)
    no, log1p = "no transform", 'transform = "log1p"'
    for fitted_on, read_under, fitted_words, read_words in ((raw, logged, no, log1p), (logged, raw, log1p, no)):
        path = tmp_path / "statistics.json"
        log_statistics(ShardedLogs(logs, fitted_on), fitted_on, Processes(), None).save(path)
        words = f"fitted with {fitted_words} for numeric feature 'views', the spec now says {read_words}:"
        with pytest.raises(ValueError, match=re.escape(words)):
            log_statistics(ShardedLogs(logs, read_under), read_under, Processes(), path)
        log_statistics(ShardedLogs(logs, fitted_on), fitted_on, Processes(), path)  # the same spec reads it
