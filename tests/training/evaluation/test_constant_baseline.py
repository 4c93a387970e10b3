"""The constant predictor beside the model's log loss: an audit's overfitted model had a validation log loss of
0.623 where the training rows' click rate predicted for every row gave 0.548, and it exported, served and was
evaluated (`ctr_logloss 0.6206`) with nothing to compare it with."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from tests.support.noise_logs import OVERFITTING, STEADY, repository, write_log
from training.evaluation.constant_baseline import warn_if_worse_than_constant
from training.evaluation.evaluate_logs import evaluate_on_logs, summary
from training.evaluation.metrics import log_loss
from training.evaluation.world_heldout import constant_metrics
from training.export import export_checkpoint
from training.pipeline import train

WORSE = "predicts worse than a constant"


def trained(tmp_path, config: str, noise: bool, caplog):
    """(repository, held-out log, model.json's metrics) of ``m`` trained on a tiny log, exported."""
    models = repository(tmp_path, config)
    with caplog.at_level(logging.WARNING):
        checkpoint = train(
            "m", models, write_log(tmp_path / "train.csv", noise), work_dir=tmp_path / "w", progress=False
        )
    export_checkpoint(checkpoint, models)
    return models, write_log(tmp_path / "heldout.csv", noise, rows=400), checkpoint.metrics


def test_a_model_trained_to_overfit_noise_records_the_constant_and_warns_in_training_and_evaluate(tmp_path, caplog):
    models, heldout, metrics = trained(tmp_path, OVERFITTING, noise=True, caplog=caplog)
    clicks = np.loadtxt(tmp_path / "train.csv", delimiter=",", skiprows=1, usecols=5)
    cut = round(clicks.size * 0.7)
    assert metrics["training_ctr"] == clicks[:cut].mean()
    assert metrics["ctr_logloss_constant"] == log_loss(clicks[cut:], np.full(clicks.size - cut, clicks[:cut].mean()))
    assert metrics["ctr_logloss"] > metrics["ctr_logloss_constant"]
    said = [r.getMessage() for r in caplog.records if WORSE in r.getMessage()]
    assert len(said) == 2 and said[0].startswith(f"m {WORSE}: its ctr_logloss {metrics['ctr_logloss']:.4f}")
    assert "the training rows' click rate" in said[0] and "fewer epochs, fewer buckets, or more rows" in said[0]
    # conversions drawn at random too: the CTCVR tower memorised them as well, and is measured against its own rate
    conversions = np.loadtxt(tmp_path / "train.csv", delimiter=",", skiprows=1, usecols=6)
    assert metrics["training_ctcvr"] == conversions[:cut].mean()
    assert metrics["ctcvr_logloss_constant"] == log_loss(
        conversions[cut:], np.full(clicks.size - cut, conversions[:cut].mean())
    )
    assert said[1].startswith(f"m {WORSE}: its ctcvr_logloss {metrics['ctcvr_logloss']:.4f}")
    assert "the training rows' click-and-conversion rate" in said[1]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        report = evaluate_on_logs(models, "m", heldout, resamples=5)
    constant = report["metrics"]["ctr_logloss_constant"]
    assert constant["worse_than_constant"] and constant["compared_with"] == "ctr_logloss"
    assert constant["value"] < report["metrics"]["ctr_logloss"]["value"]
    assert f"m {WORSE}" in caplog.text and "this log's click rate" in caplog.text
    assert any(WORSE in line for line in summary(report))


def test_a_model_that_learnt_the_signal_is_below_the_constant_and_does_not_warn(tmp_path, caplog):
    models, heldout, metrics = trained(tmp_path, STEADY, noise=False, caplog=caplog)
    assert metrics["ctr_logloss"] < metrics["ctr_logloss_constant"]
    assert metrics["ctcvr_logloss"] < metrics["ctcvr_logloss_constant"]
    report = evaluate_on_logs(models, "m", heldout, resamples=5)
    assert report["metrics"]["ctr_logloss_constant"]["worse_than_constant"] is False
    assert WORSE not in caplog.text and not any(WORSE in line for line in summary(report))


def test_the_world_report_puts_the_day_s_own_rate_beside_each_log_loss():
    click = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=np.int64)
    true_ctr = np.linspace(0.1, 0.4, 8)
    table = pa.table({"click": click, "true_ctr": true_ctr, "true_cvr": np.full(8, 0.5), "conversion_potential": click})
    report = constant_metrics(table, {"pctr": np.zeros(8), "pctcvr": np.zeros(8)})
    assert report["ctr_logloss_constant"] == log_loss(click, np.full(8, 0.25))
    assert report["ctr_slot1_logloss_constant"] == log_loss(true_ctr, np.full(8, true_ctr.mean()))
    assert set(report) == {f"{k}_logloss_constant" for k in ("ctr", "ctr_slot1", "ctcvr", "ctcvr_slot1")}


def test_labels_of_one_class_are_no_constant_to_warn_against(caplog):
    """A log without conversions: the training rate 0 predicted for every row scores a log loss of ~0, below any
    model's; a Criteo-like log of clicks alone warned "ctcvr_logloss 0.0000 is not below 0.0000"."""
    constant = log_loss(np.zeros(100), np.zeros(100))
    with caplog.at_level(logging.WARNING):
        for rate in (0.0, 1.0):
            assert not warn_if_worse_than_constant("m", "ctcvr_logloss", 1e-5, constant, ("a rate", rate), "row")
        assert warn_if_worse_than_constant("m", "ctcvr_logloss", 0.2, 0.1, ("a rate", 0.02), "row")
    assert [WORSE in r.getMessage() for r in caplog.records] == [True]
