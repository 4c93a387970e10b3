"""`ctr evaluate NAME` on the world's held-out day: every setting that determines that day recorded, and
the slot-1 probabilities a debiased model serves measured against the slot-1 truth."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import training.evaluation.world_heldout
from common.repository import MODEL_FILE, read_manifest, sha256_file, version_dir
from tests.support.tiny_model import publish_tiny_esmm
from training.evaluation.metrics import auc, log_loss
from training.evaluation.world_heldout import (
    entire_space_metrics,
    evaluate_on_world,
    selection_bias,
    slot1_clicks,
    slot1_metrics,
)

CONFIG = """kind = "esmm"
[data]
heldout_requests = 30
heldout_seed = {seed}
[world]
n_users = 100
n_ads = 40
n_advertisers = 30
"""


def test_the_world_report_records_the_scored_model_s_sha256_as_the_logs_report_does(tmp_path):
    """Versions are not committed (models/*/[0-9]* is ignored), so "esmm v1" is another model on each machine;
    the `--logs` report recorded the model's onnx_sha256, the world report did not."""
    publish_tiny_esmm(tmp_path)
    (tmp_path / "esmm" / "config.toml").write_text(CONFIG.format(seed=7))
    report = evaluate_on_world(tmp_path, "esmm")
    assert (report["model"], report["version"]) == ("esmm", 1)
    assert report["onnx_sha256"] == sha256_file(version_dir(tmp_path, "esmm", 1) / MODEL_FILE)
    # the log loss of its regime (position-blind: the displayed slot's) minus the day's own rate's, paired
    difference = report["ctr_logloss_minus_constant"]
    assert difference["value"] == pytest.approx(report["ctr_logloss"] - report["ctr_logloss_constant"])
    assert (difference["positives"], difference["rows"]) == (report["n_clicks"], report["n_impressions"])
    assert difference["ci95"][0] < difference["value"] < difference["ci95"][1]


def test_the_report_records_the_held_out_day_s_settings(tmp_path, monkeypatch):
    """Changing [data] heldout_seed changed every metric with nothing in the report showing it."""

    def nothing_scored(root, name, table, version):
        return read_manifest(root, name, 1), {}

    monkeypatch.setattr(training.evaluation.world_heldout, "run_exported", nothing_scored)
    publish_tiny_esmm(tmp_path)  # a position-blind version 1: the report says so
    reports = []
    for seed in (7, 8):
        (tmp_path / "esmm" / "config.toml").write_text(CONFIG.format(seed=seed))
        report = evaluate_on_world(tmp_path, "esmm")
        assert report["position_regime"] == "logged"
        reports.append(report["heldout"])
    assert reports[0]["seed"] == 7 and reports[1]["seed"] == 8
    assert reports[0]["policy"] == "uniform" and reports[0]["requests"] == 30
    world = reports[0]["world"]
    assert world["n_users"] == 100 and world["seed"] == 0 and world["n_slots"] > 0  # the defaults filled in


def test_slot1_probabilities_are_measured_against_the_slot1_truth():
    """A slot-1 model's pCTR was only compared with clicks at the slot displayed (×2 off on a uniform day
    over 5 slots): exact slot-1 probabilities now score a calibration error of 0, a ratio of 1 and, as log
    loss, the entropy of the slot-1 click, while the displayed-slot metrics show them ×1/examination."""
    rng = np.random.default_rng(0)
    n = 20_000
    true_ctr, true_cvr = rng.uniform(0.01, 0.3, n), rng.uniform(0.05, 0.5, n)
    examination = 1.0 / rng.integers(1, 6, n)  # the slot displayed: 1/k
    click = rng.random(n) < true_ctr * examination
    table = pa.table(
        {
            "true_ctr": true_ctr,
            "true_cvr": true_cvr,
            "examination": examination,
            "click": click,
            "conversion_potential": rng.random(n) < true_cvr,
        }
    )
    exact = {"pctr": true_ctr, "pctcvr": true_ctr * true_cvr}
    slot1 = slot1_metrics(table, exact)
    assert slot1["ctr_slot1_calibration_error"] == 0.0 and slot1["ctcvr_slot1_calibration_error"] == 0.0
    assert slot1["ctr_slot1_mean_pred_over_true"] == 1.0 and slot1["ctcvr_slot1_mean_pred_over_true"] == 1.0
    assert slot1["ctr_slot1_logloss"] == slot1["oracle_ctr_slot1_logloss"] == log_loss(true_ctr, true_ctr)
    assert slot1["ctr_slot1_logloss"] < slot1_metrics(table, {"pctr": true_ctr * 0.8})["ctr_slot1_logloss"]
    displayed = entire_space_metrics(table, exact)
    assert displayed["ctr_mean_pred_over_observed"] == pytest.approx(1 / np.mean(examination), rel=0.05)


# 40 rows, the default 20 calibration bins of 2: a prediction of 0.1 or 0.3 whose reference is 0.05 below and
# above it in turn, right on average in each bin of the prediction (ties keep their order) though every row is
# off; binned by the reference instead, each bin is off by 0.05
LEVELS = np.repeat([0.1, 0.3], 20)
WIGGLE = np.tile([-0.05, 0.05], 20)


def world_table(**columns: np.ndarray) -> pa.Table:
    n = len(next(iter(columns.values())))
    defaults = {
        "true_ctr": np.full(n, 0.5),
        "true_cvr": np.full(n, 0.5),
        "examination": np.ones(n),
        "click": np.ones(n, bool),
        "conversion_potential": np.arange(n) % 2 == 0,
    }
    return pa.table(defaults | columns)


def test_the_displayed_slot_calibration_errors_bin_by_the_prediction_against_the_observed_truth():
    """pCTR is compared with the displayed slot's click probability (true CTR x examination) and pCVR with the
    true CVR, in bins of the prediction: predictions right in every bin score 0. Binned by the reference (the
    arguments swapped) they scored 0.05, and pCTR against the slot-1 true CTR (twice the observed here) 0.2."""
    observed = LEVELS + WIGGLE
    table = world_table(true_ctr=observed / 0.5, examination=np.full(40, 0.5), true_cvr=LEVELS + WIGGLE)
    report = entire_space_metrics(table, {"pctr": LEVELS, "pcvr": LEVELS})
    assert report["ctr_calibration_error"] == pytest.approx(0.0, abs=1e-12)
    assert report["cvr_calibration_error"] == pytest.approx(0.0, abs=1e-12)
    off = entire_space_metrics(table, {"pctr": LEVELS + 0.01, "pcvr": LEVELS - 0.02})
    assert off["ctr_calibration_error"] == pytest.approx(0.01) and off["cvr_calibration_error"] == pytest.approx(0.02)


def test_the_slot1_calibration_errors_bin_by_the_prediction_against_the_slot1_truth():
    """The slot-1 figures, the same way: pCTR against the true CTR and pCTCVR against true CTR x true CVR, in bins
    of the prediction; binned by the reference they scored 0.05 and 0.025."""
    table = world_table(true_ctr=LEVELS + WIGGLE, true_cvr=np.full(40, 0.5), examination=np.full(40, 0.25))
    report = slot1_metrics(table, {"pctr": LEVELS, "pctcvr": 0.5 * LEVELS})
    assert report["ctr_slot1_calibration_error"] == pytest.approx(0.0, abs=1e-12)
    assert report["ctcvr_slot1_calibration_error"] == pytest.approx(0.0, abs=1e-12)


def test_the_clicked_cvr_auc_ranks_the_clicked_impressions_only():
    """pCVR ranks the clicked impressions perfectly and the unclicked ones the wrong way round: the clicked AUC
    is 1, the entire-space AUC 12 of 16 pairs."""
    table = world_table(
        click=np.array([1, 1, 1, 1, 0, 0, 0, 0], bool),
        conversion_potential=np.array([1, 1, 0, 0, 1, 1, 0, 0], bool),
    )
    pcvr = np.array([0.9, 0.8, 0.2, 0.1, 0.3, 0.35, 0.7, 0.75])
    report = entire_space_metrics(table, {"pcvr": pcvr})
    assert report["cvr_auc_clicked"] == 1.0
    assert report["cvr_auc_entire_space"] == 0.75


def test_slot1_clicks_are_drawn_with_the_true_ctr():
    clicks = slot1_clicks(np.full(100_000, 0.1), 3)
    assert clicks.dtype == bool
    assert clicks.mean() == pytest.approx(0.1, abs=0.005)
    assert (slot1_clicks(np.full(100_000, 0.1), 3) == clicks).all()  # the stream fixes the draw


def test_the_selection_bias_compares_clicked_with_unclicked_impressions():
    """The unclicked mean is over the unclicked impressions, not over all of them."""
    click = np.array([1, 1, 0, 0, 0, 0], bool)
    table = world_table(click=click, true_cvr=np.where(click, 0.375, 0.125))
    bias = selection_bias(table)
    assert bias["true_cvr_mean_clicked"] == 0.375
    assert bias["true_cvr_mean_unclicked"] == 0.125
    assert bias["n_clicks"] == 2 and bias["n_conversions"] == 1


def test_the_auc_counts_tied_scores_as_half_a_pair():
    """training.evaluation.metrics.auc: a positive and a negative with the same score are half ordered right, whatever
    their order in the arrays."""
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert auc(np.array([0, 1, 0, 1]), np.array([0.2, 0.5, 0.5, 0.9])) == 0.875  # 3.5 of 4 pairs
