"""Validation after every epoch: an audit's second default epoch overfitted a Criteo-like log (validation log
loss 0.535 -> 0.623) and the metrics, computed once after the last epoch, could not show it."""

from __future__ import annotations

import logging

from tests.support.noise_logs import OVERFITTING, STEADY, repository, write_log
from training.pipeline import train


def test_an_overfitting_run_records_each_epoch_and_says_which_epoch_was_best(tmp_path, caplog):
    models = repository(tmp_path, OVERFITTING)
    logs = write_log(tmp_path / "noise.csv", noise=True)
    with caplog.at_level(logging.INFO):
        metrics = train("m", models, logs, work_dir=tmp_path / "work", progress=False).metrics
    by_epoch = metrics["validation_by_epoch"]
    assert [record["epoch"] for record in by_epoch] == list(range(1, 9))
    assert by_epoch[-1]["ctr_logloss"] == metrics["ctr_logloss"]  # the last epoch's scores are the model's
    assert all({"ctr_auc", "ctcvr_logloss", "training_loss"} <= set(record) for record in by_epoch)
    losses = [record["ctr_logloss"] for record in by_epoch]
    best = losses.index(min(losses)) + 1
    assert losses[-1] > min(losses)
    assert caplog.text.count("validation after epoch") == 8
    said = [r for r in caplog.records if "after the last epoch" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO]  # not a warning: a later epoch may calibrate better
    said = [r.getMessage() for r in said]
    assert f"than epoch {best}'s {min(losses):.5f}" in said[0]
    config = models / "m" / "config.toml"
    assert f"(`epochs = {best}` and `batch_size = 32` under [training] in {config})" in said[0]


def test_a_run_that_improves_every_epoch_does_not_warn(tmp_path, caplog):
    models = repository(tmp_path, STEADY)
    logs = write_log(tmp_path / "signal.csv", noise=False)
    with caplog.at_level(logging.INFO):
        metrics = train("m", models, logs, work_dir=tmp_path / "work", progress=False).metrics
    losses = [record["ctr_logloss"] for record in metrics["validation_by_epoch"]]
    assert losses == sorted(losses, reverse=True) and len(losses) == 3
    assert "after the last epoch" not in caplog.text
