"""`ctr evaluate NAME --logs`: calibration per position (slot-1 predictions times model.json's CTR ratios),
and only a version the service would load is scored."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from common.features import Feature, FeatureSpec, NumericStats
from common.repository import sha256_file
from tests.support.esmm_checkpoint import checkpoint
from training.evaluation.constant_baseline import DIFFERENCE_SUFFIX, constant_log_loss
from training.evaluation.evaluate_logs import _scored, calibration, constant_reference, evaluate_on_logs, summary
from training.evaluation.metrics import log_loss
from training.evaluation.world_heldout import run_exported
from training.export import export_checkpoint
from training.fitting.checkpoint import Checkpoint
from training.models.esmm import ESMM
from training.models.settings.esmm import ESMMConfig


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


def test_too_few_of_a_class_give_a_value_without_an_interval_saying_why():
    """One click among 200 rows gave an AUC of 0.76 "95% CI [0.71, 0.82]" (each resample holding the click gave
    its rank again) and one clicked row a log loss interval of zero width: no interval now, and why."""
    rng = np.random.default_rng(0)
    clicks = np.zeros(200, bool)
    clicks[17] = True
    scored = _scored("ctr", clicks, rng.random(200), "clicks", rng, 200)
    for key in ("ctr_auc", "ctr_logloss"):
        assert np.isfinite(scored[key]["value"]) and scored[key]["ci95"] is None, scored
        assert scored[key]["reason"] == (
            "1 impression with clicks: too few for a bootstrap interval (it needs at least 10 of each class present)"
        )
    one_clicked_row = _scored("cvr_clicked", np.ones(1, bool), np.array([0.2]), "conversions", rng, 200)
    assert one_clicked_row["cvr_clicked_logloss"]["ci95"] is None
    assert "1 impression with conversions: too few" in one_clicked_row["cvr_clicked_logloss"]["reason"]
    clicks[:10] = True  # 11 clicks, 189 without: an interval for both
    scored = _scored("ctr", clicks, rng.random(200), "clicks", rng, 200)
    assert all(scored[key]["ci95"] is not None for key in ("ctr_auc", "ctr_logloss")), scored
    no_click = _scored("ctr", np.zeros(200, bool), rng.random(200), "clicks", rng, 200)  # one class, 200 rows
    assert no_click["ctr_logloss"]["ci95"] is not None


def test_with_no_row_at_a_position_with_a_ratio_nothing_is_compared():
    report = calibration(np.full(2, 0.5), np.array([1, 0]), np.array([4, 5]), {"regime": "slot1", "ctr_ratios": [1.0]})
    assert report["overall"]["predicted_ctr"] is None and "nothing to compare" in report["overall"]["reason"]


def exported_pair(tmp_path):
    """(repository, held-out log): `deb` and `other` exported from two draws of esmm_checkpoint's model, and
    `corrm`, a copy of deb's version 1 (renamed) whose model.onnx is other's (the same inputs)."""
    root = tmp_path / "models"
    export_checkpoint(checkpoint("deb"), root)
    other = checkpoint("other")
    torch.manual_seed(1)
    other.state_dict = ESMM(other.spec, ESMMConfig(hidden=[32, 16])).state_dict()
    export_checkpoint(other, root)
    shutil.copytree(root / "deb" / "1", root / "corrm" / "1")
    shutil.copyfile(root / "other" / "1" / "model.onnx", root / "corrm" / "1" / "model.onnx")
    manifest = json.loads((root / "corrm" / "1" / "model.json").read_text())
    (root / "corrm" / "1" / "model.json").write_text(json.dumps(manifest | {"name": "corrm"}))  # its own name
    rng = np.random.default_rng(0)
    logs = tmp_path / "heldout.parquet"
    columns = {"user_id": rng.integers(0, 50, 400), "ad_id": rng.integers(0, 30, 400), "ad_price": rng.random(400)}
    labels = {"position": rng.integers(1, 4, 400), "click": np.arange(400) % 5 == 0, "conversion": np.zeros(400)}
    pq.write_table(pa.table(columns | {k: np.asarray(v, dtype=np.int64) for k, v in labels.items()}), logs)
    return root, logs


def test_evaluate_refuses_a_version_whose_model_onnx_fails_its_sha256_as_the_service_does(tmp_path):
    """It printed the metrics of the replacement model, which the service refuses to load."""
    root, logs = exported_pair(tmp_path)
    assert evaluate_on_logs(root, "deb", logs, resamples=5)["metrics"]["ctr_auc"]["value"] is not None
    with pytest.raises(ValueError) as raised:
        evaluate_on_logs(root, "corrm", logs, resamples=5)
    message = str(raised.value)
    assert message.startswith("corrm version 1 is not what its model.json describes (model.onnx sha256 ")
    assert "does not match model.json); the service refuses it too: export it again" in message


def test_a_graph_whose_inputs_do_not_fit_the_spec_is_one_line_not_an_onnx_runtime_traceback(tmp_path):
    """A 54-line ONNX Runtime traceback."""
    root, logs = exported_pair(tmp_path)
    categorical = tuple(Feature(f"c{i}", "categorical", "context", buckets=4) for i in range(3))
    wide = FeatureSpec((*categorical, Feature("x", "numeric", "candidate")), {"x": NumericStats(0.0, 1.0)})
    export_checkpoint(
        Checkpoint("wide", "esmm", {"hidden": [4]}, wide, ESMM(wide, ESMMConfig(hidden=[4])).state_dict()), root
    )
    version = root / "corrm" / "1"
    shutil.copyfile(root / "wide" / "1" / "model.onnx", version / "model.onnx")
    manifest = json.loads((version / "model.json").read_text())
    manifest["onnx_sha256"] = sha256_file(version / "model.onnx")  # its checksum made to match
    (version / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"^corrm version 1 is not what .*graph input 'categorical' has width 3 but"):
        run_exported(root, "corrm", pq.read_table(logs))


def test_a_version_copied_from_another_is_refused_as_the_service_refuses_it(tmp_path):
    """``cp -r 1 2`` got metrics for version 2, which the service refuses (its model.json says version 1). The
    refusal said "export it again" and nothing of where a copied version belongs."""
    root, logs = exported_pair(tmp_path)
    shutil.copytree(root / "deb" / "1", root / "deb" / "2")
    said = r"^deb version 2 is not what its model.json describes \(model.json describes 'deb' version 1, not this"
    with pytest.raises(ValueError, match=said) as refused:
        run_exported(root, "deb", pq.read_table(logs))
    assert str(refused.value).endswith(
        f"the service refuses it too: a version is served only in the folder its model.json names: copy it to "
        f"{root / 'deb' / '1'} (where that number is free), or publish its checkpoint with `ctr export deb`, "
        "which numbers it"
    )


def test_a_position_without_clicks_says_why_its_ratio_has_no_value():
    """Its predicted-over-observed was a bare null beside an observed CTR of 0 (a missing ratio said why)."""
    regime = {"regime": "slot1", "ctr_ratios": [1.0, 0.5]}
    position = np.array([1, 1, 2, 2])
    report = calibration(np.full(4, 0.2), np.array([1, 0, 0, 0]), position, regime)
    first, second = report["per_position"]
    assert "reason" not in first and first["predicted_over_observed"] == 0.2 / 0.5
    assert second["predicted_over_observed"] is None
    assert second["reason"] == "no click observed: predicted over observed has no value"
    unclicked = calibration(np.full(4, 0.2), np.zeros(4, int), position, regime)["overall"]
    assert unclicked["predicted_over_observed"] is None and unclicked["reason"].startswith("no click observed")


def test_the_report_records_the_log_s_fingerprint_the_model_s_sha256_and_the_bootstrap_seed(tmp_path):
    """It recorded the log's path alone: a log rewritten at that path, or another seed, left no trace."""
    from common.repository import read_manifest
    from training.logs.fingerprint import fingerprint

    root, logs = exported_pair(tmp_path)
    report = evaluate_on_logs(root, "deb", logs, resamples=5, seed=3)
    assert report["logs_fingerprint"] == fingerprint(logs)
    assert report["onnx_sha256"] == read_manifest(root, "deb", 1).onnx_sha256
    assert report["bootstrap"]["seed"] == 3


def test_resamples_0_gives_the_metrics_without_intervals_and_the_cli_default_is_the_module_s(tmp_path):
    """200 resamples a interval cost minutes on a log of 1e7 rows, with no way to ask for fewer: `--resamples`
    sets them, 0 for none (the values unchanged, each interval null saying why)."""
    import inspect

    from cli.main import evaluate
    from training.evaluation.evaluate_logs import BOOTSTRAP_RESAMPLES

    root, logs = exported_pair(tmp_path)
    without = evaluate_on_logs(root, "deb", logs, resamples=0)
    with_intervals = evaluate_on_logs(root, "deb", logs, resamples=5)
    assert without["bootstrap"]["resamples"] == 0
    for key, metric in with_intervals["metrics"].items():
        if key.endswith(DIFFERENCE_SUFFIX):  # the paired difference's interval is the normal one: no resample
            assert without["metrics"][key] == metric
        elif metric.get("ci95") is not None:
            assert without["metrics"][key]["value"] == metric["value"], key
            assert without["metrics"][key]["ci95"] is None, key
            assert without["metrics"][key]["reason"] == "no interval: --resamples 0", key
    assert inspect.signature(evaluate).parameters["resamples"].default == BOOTSTRAP_RESAMPLES


def test_ctcvr_metrics_measure_the_served_pctcvr_not_the_graph_s_float32_product(tmp_path):
    """The service serves pctcvr = float64(pctr) x float64(pcvr) (docs/encoding.md, "The numbers served"); the
    report, said to measure the version "as served", measured the graph's float32 pctcvr output."""
    from training.evaluation.served_version import scoring_model
    from training.logs.column_arrays import column_array, feature_columns
    from training.logs.reading import read_logs

    root, logs = exported_pair(tmp_path)
    table = read_logs(logs, None)
    model = scoring_model(root, "deb", 1)
    encoded = model.encoder.encode(feature_columns(table, model.manifest.feature_spec), table.num_rows)
    graph = model.run(encoded.as_inputs())
    served = graph["pctr"].astype(np.float64) * graph["pcvr"].astype(np.float64)
    assert not np.array_equal(served, graph["pctcvr"].astype(np.float64))  # the two differ on these rows
    _, outputs = run_exported(root, "deb", table)
    assert outputs["pctcvr"].dtype == np.float64 and np.array_equal(outputs["pctcvr"], served)
    converted = column_array(table, "click").astype(bool) & column_array(table, "conversion").astype(bool)
    metrics = evaluate_on_logs(root, "deb", logs, resamples=5)["metrics"]
    assert metrics["ctcvr_logloss"]["value"] == log_loss(converted, served)


def test_the_logs_a_version_was_trained_on_are_said_to_be_no_held_out_logs(tmp_path, caplog):
    """`ctr evaluate NAME --logs` scored a version on its own training logs as on a held-out log, saying nothing
    (a CTR AUC of 0.709 there against 0.671 on a fresh log), though model.json holds their fingerprint."""
    import logging

    from training.logs.fingerprint import fingerprint

    root, logs = exported_pair(tmp_path)
    assert evaluate_on_logs(root, "deb", logs, resamples=5)["training_logs"] is False  # trained on other logs
    own = checkpoint("own")
    own.data_fingerprint = fingerprint(logs)
    export_checkpoint(own, root)
    with caplog.at_level(logging.WARNING, logger="training.evaluation.evaluate_logs"):
        report = evaluate_on_logs(root, "own", logs, resamples=5)
    assert report["training_logs"] is True
    assert "these are the logs own v1 was trained on" in caplog.text
    assert not any("trained on" in line for line in summary(report))  # said once, in the warning


def test_the_report_counts_the_values_outside_the_training_range_scored_at_its_edge(tmp_path):
    """The service clips a value outside the version's training range (common/encoder.py); the report of a
    held-out log says how many of its values were, by feature, so a unit mistake in the log shows."""
    from dataclasses import replace

    trained = checkpoint("ranged")
    trained.spec = trained.spec.with_stats({"ad_price": replace(trained.spec.stats["ad_price"], low=0.0, high=1.0)})
    root = tmp_path / "models"
    export_checkpoint(trained, root)
    rng = np.random.default_rng(0)
    logs = tmp_path / "heldout.parquet"
    price = np.where(np.arange(400) < 7, 100.0, rng.random(400))  # 7 prices in cents where training saw dollars
    columns = {"user_id": rng.integers(0, 50, 400), "ad_id": rng.integers(0, 30, 400), "ad_price": price}
    labels = {"position": rng.integers(1, 4, 400), "click": np.arange(400) % 5 == 0, "conversion": np.zeros(400)}
    pq.write_table(pa.table(columns | {k: np.asarray(v, dtype=np.int64) for k, v in labels.items()}), logs)
    report = evaluate_on_logs(root, "ranged", logs, resamples=5)
    assert report["clipped_values"] == {"ad_price": 7}
    assert "values outside the training range, scored at its edge as the service does: {'ad_price': 7}" in summary(
        report
    )


def test_a_slot1_model_s_log_losses_at_the_logged_slot_use_the_rows_with_a_ratio(tmp_path):
    """pCTR x the slot's learned ratio against the clicks there, over the rows at a slot with a ratio (their
    count said); none such: null with the reason. The plain log losses stay over every row."""
    from training.logs.column_arrays import column_array
    from training.logs.reading import read_logs

    root, logs = exported_pair(tmp_path)
    manifest_path = root / "deb" / "1" / "model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"position": {"regime": "slot1", "ctr_ratios": [1.0, 0.5]}}))
    metrics = evaluate_on_logs(root, "deb", logs, resamples=5)["metrics"]
    position = column_array(read_logs(logs, None), "position")
    at_slot = metrics["ctr_logloss_at_slot"]
    assert at_slot["n_impressions"] == int((position <= 2).sum()) < 400  # position 3 has no ratio
    _, outputs = run_exported(root, "deb", read_logs(logs, None))
    click = column_array(read_logs(logs, None), "click").astype(bool)
    kept = position <= 2
    expected = log_loss(click[kept], outputs["pctr"][kept] * np.where(position[kept] == 1, 1.0, 0.5))
    assert at_slot["value"] == pytest.approx(expected)
    assert metrics["ctr_logloss"]["value"] == pytest.approx(log_loss(click, outputs["pctr"]))  # every row
    manifest_path.write_text(json.dumps(manifest | {"position": {"regime": "slot1", "ctr_ratios": [1.0]}}))
    only_lower = tmp_path / "lower.parquet"
    table = read_logs(logs, None)
    pq.write_table(table.filter(pc.greater(table.column("position"), 1)), only_lower)
    nothing = evaluate_on_logs(root, "deb", only_lower, resamples=5)["metrics"]["ctr_logloss_at_slot"]
    assert nothing["n_impressions"] == 0 and nothing["value"] is None
    assert nothing["reason"] == "no row is at a slot with a CTR ratio in model.json"


def test_a_slot1_model_s_constant_reference_is_over_the_rows_its_log_loss_is_measured_on(caplog):
    """The rows at a slot with a ratio clicked half the time, the lower slots beyond the ratios never: over every
    row the constant (0.199) fell below the model's 0.5 and warned, where over the model's own rows it is 0.693."""
    click = np.r_[np.arange(100) % 2 == 0, np.zeros(900, bool)]
    at_slot_rows = np.r_[np.ones(100, bool), np.zeros(900, bool)]
    pctr = np.r_[np.where(click[:100], 0.6, 0.4), np.full(900, np.nan)]  # no ratio beyond the first 100: NaN
    metrics = {"ctr_logloss_at_slot": {"n_impressions": 100, "value": log_loss(click[:100], pctr[:100])}}
    rng = np.random.default_rng(0)
    reference = constant_reference("m", metrics, click, pctr, at_slot_rows, rng, 20)
    constant = reference["ctr_logloss_constant"]
    assert constant["value"] == pytest.approx(constant_log_loss(click[:100])) == pytest.approx(np.log(2))
    assert constant["rate"] == 0.5 and constant["n_impressions"] == 100
    assert constant["compared_with"] == "ctr_logloss_at_slot" and constant["worse_than_constant"] is False
    # the model minus the constant over the same 100 rows: -log(0.6) + log(0.5) on every one of them
    difference = reference["ctr_logloss_at_slot_minus_constant"]
    assert difference["value"] == pytest.approx(np.log(0.5 / 0.6)) and difference["ci95"] == pytest.approx(
        [np.log(0.5 / 0.6)] * 2
    )
    assert (difference["positives"], difference["rows"]) == (50, 100)
    assert "worse than a constant" not in caplog.text
    metrics = {"ctr_logloss_at_slot": {"n_impressions": 0, "value": None, "reason": "no row is at a slot"}}
    nothing = constant_reference("m", metrics, click, pctr, np.zeros(1000, bool), rng, 20)["ctr_logloss_constant"]
    assert nothing["value"] is None and nothing["reason"] == "no row is at a slot"
    plain = constant_reference("m", {"ctr_logloss": {"value": 0.1}}, click, np.full(1000, 0.1), None, rng, 20)
    assert plain["ctr_logloss_constant"]["value"] == pytest.approx(constant_log_loss(click))
    assert plain["ctr_logloss_constant"]["n_impressions"] == plain["ctr_logloss_minus_constant"]["rows"] == 1000
