"""Calibration per position on a user's log: slot-1 predictions times model.json's CTR ratios."""

import numpy as np
import pytest

from training.evaluate_logs import _scored, calibration


def test_slot1_predictions_are_scaled_by_the_learned_ratios():
    position = np.repeat([1, 2, 3], 1000)
    click = np.concatenate([np.arange(1000) < 200, np.arange(1000) < 100, np.arange(1000) < 50])
    pctr = np.full(3000, 0.2)  # a slot-1 model: the CTR this ad would get at the top
    report = calibration(pctr, click, position, {"regime": "slot1", "ctr_ratios": [1.0, 0.5, 0.25]})
    assert "ratio" in report["prediction"] and report["position_regime"] == "slot1"
    ratios = [p["predicted_over_observed"] for p in report["per_position"]]
    assert ratios == pytest.approx([1.0, 1.0, 1.0])
    assert report["overall"]["predicted_over_observed"] == pytest.approx(1.0)


def test_without_ratios_the_prediction_is_compared_as_served_and_a_missing_slot_is_named():
    position = np.array([1, 2, 3, 4])
    click = np.array([1, 0, 1, 0])
    plain = calibration(np.full(4, 0.5), click, position, None)
    assert "no position ctr_ratios" in plain["prediction"]
    assert [p["ctr_ratio"] for p in plain["per_position"]] == [None] * 4
    short = calibration(np.full(4, 0.5), click, position, {"regime": "slot1", "ctr_ratios": [1.0, 0.5, 0.25]})
    assert short["per_position"][3]["predicted_ctr"] is None and "position 4" in short["per_position"][3]["reason"]
    # overall: both means over the rows that have a prediction (they compared 3 rows' with 4 rows' CTR)
    assert short["overall"]["observed_ctr"] == pytest.approx(2 / 3) and short["overall"]["rows_left_out"] == 1
    assert short["overall"]["predicted_ctr"] == pytest.approx((0.5 + 0.25 + 0.125) / 3)


def test_one_class_is_null_with_a_reason_not_nan():
    rng = np.random.default_rng(0)
    scored = _scored("ctcvr", np.zeros(50, bool), rng.random(50), "conversions", rng, 20)
    assert scored["ctcvr_auc"] == {
        "value": None,
        "reason": "AUC needs both classes; no conversions in the log: one class only",
    }
    assert np.isfinite(scored["ctcvr_logloss"]["value"])


def test_with_no_row_at_a_position_with_a_ratio_nothing_is_compared():
    report = calibration(np.full(2, 0.5), np.array([1, 0]), np.array([4, 5]), {"regime": "slot1", "ctr_ratios": [1.0]})
    assert report["overall"]["predicted_ctr"] is None and "nothing to compare" in report["overall"]["reason"]
