"""The constant predictor beside the model's log loss: an audit's overfitted model had a validation log loss of
0.623 where the training rows' click rate predicted for every row gave 0.548, and it exported, served and was
evaluated (`ctr_logloss 0.6206`) with nothing to compare it with."""

from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from common.repository import MANIFEST_FILE, version_dir
from tests.support.noise_logs import OVERFITTING, STEADY, repository, write_log
from training.evaluation.constant_baseline import (
    ConstantComparison,
    difference_from_constant,
    warn_if_worse_than_constant,
)
from training.evaluation.evaluate_logs import evaluate_on_logs, summary
from training.evaluation.metrics import log_loss
from training.evaluation.world_heldout import constant_metrics
from training.export import export_checkpoint
from training.pipeline import train

WORSE = "predicts worse than a constant"
BEYOND = "is beyond the noise: train it with fewer epochs, fewer buckets, or more rows"
WITHIN = "is within the noise: more validation rows would tell whether it is worse"


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
    assert "the training rows' click rate" in said[0]
    # the model minus the constant over the 90 validation rows, its interval above 0: the overfit is no noise
    difference = metrics["ctr_logloss_minus_constant"]
    assert difference["value"] == pytest.approx(metrics["ctr_logloss"] - metrics["ctr_logloss_constant"], abs=1e-12)
    assert (difference["positives"], difference["rows"]) == (int(clicks[cut:].sum()), clicks.size - cut)
    low, high = difference["ci95"]
    assert 0 < low < difference["value"] < high
    assert said[0].endswith(
        f"the difference {difference['value']:+.4f} (95% interval {low:+.4f} to {high:+.4f}, "
        f"{difference['positives']} clicks among 90 validation rows) {BEYOND}"
    )
    # model.json records the figures (not the rows' differences), each epoch's too
    manifest = json.loads((version_dir(models, "m", 1) / MANIFEST_FILE).read_text())["metrics"]
    assert manifest["ctr_logloss_minus_constant"] == difference
    assert manifest["validation_by_epoch"][-1]["ctr_logloss_minus_constant"] == difference
    # conversions drawn at random too: the CTCVR tower memorised them as well, and is measured against its own rate
    conversions = np.loadtxt(tmp_path / "train.csv", delimiter=",", skiprows=1, usecols=6)
    assert metrics["training_ctcvr"] == conversions[:cut].mean()
    assert metrics["ctcvr_logloss_constant"] == log_loss(
        conversions[cut:], np.full(clicks.size - cut, conversions[:cut].mean())
    )
    assert said[1].startswith(f"m {WORSE}: its ctcvr_logloss {metrics['ctcvr_logloss']:.4f}")
    assert "the training rows' click-and-conversion rate" in said[1] and said[1].endswith(BEYOND)
    ctcvr = metrics["ctcvr_logloss_minus_constant"]
    assert (
        ctcvr["positives"] == int(conversions[cut:].sum())
        and f" {ctcvr['positives']} click-and-conversions " in said[1]
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        report = evaluate_on_logs(models, "m", heldout, resamples=5)
    constant = report["metrics"]["ctr_logloss_constant"]
    assert constant["worse_than_constant"] and constant["compared_with"] == "ctr_logloss"
    assert constant["value"] < report["metrics"]["ctr_logloss"]["value"]
    assert f"m {WORSE}" in caplog.text and "this log's click rate" in caplog.text
    # the report's paired difference over the held-out rows, said by the warning and in the summary alike
    difference = report["metrics"]["ctr_logloss_minus_constant"]
    assert difference["rows"] == 400 and difference["positives"] == report["n_clicks"]
    warned = [r.getMessage() for r in caplog.records if WORSE in r.getMessage()]
    assert len(warned) == 1 and warned[0].endswith(
        " rows) is beyond the noise: train it with fewer epochs, fewer buckets, or more rows"
    )
    assert f"  {warned[0]}" in summary(report)


def test_a_model_no_better_than_a_constant_on_few_rows_warns_that_the_difference_is_within_the_noise(tmp_path, caplog):
    """The steady config on the noise log: nothing to learn, and its CTR log loss lands a little above the
    constant's, by less than the noise of 26 clicks among 90 validation rows; the warning says so and that more
    validation rows would tell, not to train it otherwise."""
    _, _, metrics = trained(tmp_path, STEADY, noise=True, caplog=caplog)
    difference = metrics["ctr_logloss_minus_constant"]
    low, high = difference["ci95"]
    assert low < 0 <= difference["value"] < high
    said = [r.getMessage() for r in caplog.records if WORSE in r.getMessage()]
    assert [r.levelno for r in caplog.records if WORSE in r.getMessage()] == [logging.WARNING]
    assert said == [
        f"m {WORSE}: its ctr_logloss {metrics['ctr_logloss']:.4f} is not below {metrics['ctr_logloss_constant']:.4f}, "
        f"the log loss of predicting the training rows' click rate {metrics['training_ctr']:.4f} for every validation "
        f"row; the difference {difference['value']:+.4f} (95% interval {low:+.4f} to {high:+.4f}, "
        f"{difference['positives']} clicks among 90 validation rows) {WITHIN}"
    ]
    assert metrics["ctcvr_logloss_minus_constant"]["value"] < 0  # its CTCVR below the constant: not warned


def test_the_difference_from_the_constant_is_the_mean_of_the_rows_paired_differences_with_a_normal_interval():
    labels = [1, 0, 0, 0, 1, 0, 0, 0]
    predicted = [0.5, 0.2, 0.1, 0.4, 0.3, 0.1, 0.2, 0.6]
    rate = 0.25
    by_hand = [
        -(math.log(p) if y else math.log(1 - p)) + (math.log(rate) if y else math.log(1 - rate))
        for y, p in zip(labels, predicted, strict=True)
    ]
    mean, half = statistics.fmean(by_hand), 1.959964 * statistics.stdev(by_hand) / math.sqrt(8)
    difference = difference_from_constant(np.array(labels), np.array(predicted), rate)
    assert difference["value"] == pytest.approx(mean, abs=1e-15)
    assert difference["ci95"] == pytest.approx([mean - half, mean + half], abs=1e-15)
    assert (difference["positives"], difference["rows"]) == (2, 8)
    assert difference["value"] == pytest.approx(
        log_loss(np.array(labels), np.array(predicted)) - log_loss(np.array(labels), np.full(8, rate)), abs=1e-15
    )
    one = difference_from_constant(np.array([1]), np.array([0.5]), rate)
    assert one["ci95"] is None and one["reason"] == "1 row: no interval"
    expected = difference_from_constant(np.array([0.2, 0.6]), np.array([0.3, 0.3]), 0.4)  # expected labels
    assert expected["positives"] == pytest.approx(0.8) and expected["rows"] == 2


def test_the_warning_says_whether_the_difference_is_beyond_the_noise():
    """Beyond it (the interval above 0): the advice to train otherwise; within it: more rows would tell; without the
    figures (a caller with no rows' differences): the advice alone, as before."""
    rate = ("the training rows' click-and-conversion rate", 0.01)
    start = (
        f"esmm {WORSE}: its ctcvr_logloss_logged_b 0.0473 is not below 0.0470, the log loss of predicting the "
        "training rows' click-and-conversion rate 0.0100 for every validation row; "
    )
    within = {"value": 0.0003, "ci95": [-0.0012, 0.0018], "positives": 31, "rows": 1200}
    beyond = {"value": 0.003, "ci95": [0.0012, 0.0048], "positives": 1310, "rows": 12000}
    comparison = ConstantComparison("esmm", "ctcvr_logloss_logged_b", 0.0473, 0.047, rate, "validation row")
    positives = "click-and-conversions"
    assert replace(comparison, difference=within, positives=positives).warning() == start + (
        f"the difference +0.0003 (95% interval -0.0012 to +0.0018, 31 click-and-conversions among 1,200 validation "
        f"rows) {WITHIN}"
    )
    assert replace(comparison, difference=beyond, positives=positives).warning() == start + (
        f"the difference +0.0030 (95% interval +0.0012 to +0.0048, 1,310 click-and-conversions among 12,000 "
        f"validation rows) {BEYOND}"
    )
    one = within | {"positives": 1, "rows": 90}
    assert "(95% interval -0.0012 to +0.0018, 1 click-and-conversion among 90 validation rows)" in str(
        replace(comparison, difference=one, positives=positives).warning()
    )
    assert comparison.warning() == start + "train it with fewer epochs, fewer buckets, or more rows"
    assert replace(comparison, model=0.0469, difference=within).warning() is None  # below the constant


def test_a_model_level_with_the_constant_warns_and_an_interval_from_zero_holds_zero():
    """A model "not below" the constant is one level with it too (one that learnt the base rate alone); and an
    interval whose low end is 0 holds 0: within the noise, not beyond it."""
    rate = ("the training rows' click rate", 0.25)
    level = ConstantComparison("m", "ctr_logloss", 0.5623, 0.5623, rate, "validation row")
    assert level.warning() == (
        f"m {WORSE}: its ctr_logloss 0.5623 is not below 0.5623, the log loss of predicting the training rows' click "
        "rate 0.2500 for every validation row; train it with fewer epochs, fewer buckets, or more rows"
    )
    from_zero = {"value": 0.001, "ci95": [0.0, 0.002], "positives": 40, "rows": 160}
    assert str(replace(level, difference=from_zero, positives="clicks").warning()).endswith(WITHIN)


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
            comparison = ConstantComparison("m", "ctcvr_logloss", 1e-5, constant, ("a rate", rate), "row")
            assert not warn_if_worse_than_constant(comparison)
        assert warn_if_worse_than_constant(ConstantComparison("m", "ctcvr_logloss", 0.2, 0.1, ("a rate", 0.02), "row"))
    assert [WORSE in r.getMessage() for r in caplog.records] == [True]
