"""`ctr evaluate NAME` on the world's held-out day: every setting that determines that day recorded, and
the slot-1 probabilities a debiased model serves measured against the slot-1 truth."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import training.evaluation
from tests.service.tiny_model import publish_tiny_esmm
from training.evaluation import entire_space_metrics, evaluate_on_world, slot1_metrics
from training.metrics import log_loss

CONFIG = """kind = "esmm"
[data]
heldout_requests = 30
heldout_seed = {seed}
[world]
n_users = 100
n_ads = 40
n_advertisers = 30
"""


def test_the_report_records_the_held_out_day_s_settings(tmp_path, monkeypatch):
    """Changing [data] heldout_seed changed every metric with nothing in the report showing it."""
    monkeypatch.setattr(training.evaluation, "run_exported", lambda root, name, table, version: (1, {}))
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
