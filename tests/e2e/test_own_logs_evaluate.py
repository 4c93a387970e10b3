"""A user's own three-position Parquet logs, as the README's "Your own logs" walks them through:
`ctr spec infer`, `ctr new`, `ctr train --logs`, `ctr export`, `ctr evaluate --logs` on a held-out log."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app

POSITIONS = 3
EXAMINATION = np.array([1.0, 0.6, 0.35])  # P(seen | position): the logs' position bias


def write_log(path, requests: int, seed: int, conversions: bool = True) -> None:
    """Requests of three ads each: the ad's creative drives clicks, the position scales them."""
    rng = np.random.default_rng(seed)
    rows = requests * POSITIONS
    creative = rng.integers(0, 20, rows)
    position = np.tile(np.arange(1, POSITIONS + 1), requests)
    attractiveness = np.where(creative % 2 == 0, 0.5, 0.08)
    click = rng.random(rows) < attractiveness * EXAMINATION[position - 1]
    conversion = click & (rng.random(rows) < np.where(creative < 5, 0.6, 0.1)) if conversions else np.zeros(rows, bool)
    table = pa.table(
        {
            "request_id": np.repeat([f"r{seed}_{i}" for i in range(requests)], POSITIONS),
            "site": np.repeat(rng.choice(["news", "sport", "shop"], requests), POSITIONS),
            "creative": creative,
            "bid": rng.uniform(0.1, 2.0, rows),
            "position": position,
            "click": click.astype(np.int64),
            "conversion": conversion.astype(np.int64),
        }
    )
    pq.write_table(table, path)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A repository with model `mine`, started by `ctr new` from an inferred spec, trained and exported."""
    tmp = tmp_path_factory.mktemp("own")
    write_log(tmp / "train.parquet", requests=1200, seed=1)
    write_log(tmp / "heldout.parquet", requests=400, seed=2)
    invoke("spec", "infer", "--logs", str(tmp / "train.parquet"), "--out", str(tmp / "spec.toml"))
    models, work = str(tmp / "models"), str(tmp / "work")
    invoke("new", "mine", "--kind", "esmm", "--spec", str(tmp / "spec.toml"), "-r", models)
    config = tmp / "models" / "mine" / "config.toml"  # edited as the user would, to a small model
    config.write_text(
        config.read_text()
        .replace("embedding_dim = 18", "embedding_dim = 4")
        .replace("hidden = [360, 200, 80]", "hidden = [16, 8]")
        .replace("position_bypass = false", "position_bypass = true")  # slot-1 pCTR + ratios
        .replace("learning_rate = 0.001", "learning_rate = 0.01")
    )  # 1e-3: ~200 steps leave b unlearnt
    invoke("train", "mine", "--logs", str(tmp / "train.parquet"), "--no-progress", "-r", models, "--work-dir", work)
    invoke("export", "mine", "-r", models, "--work-dir", work)
    return tmp


def test_a_small_log_gets_enough_steps(trained):
    # `ctr new` leaves epochs and batch_size out: 3,240 training rows get batch 128 x 8 epochs = 208 steps
    training = json.loads((trained / "models" / "mine" / "1" / "model.json").read_text())["training"]
    assert (training["batch_size"], training["epochs"]) == (128, 8)


def test_evaluate_on_own_heldout_log(trained):
    out = trained / "report.json"
    invoke(
        "evaluate", "mine", "--logs", str(trained / "heldout.parquet"), "--out", str(out), "-r", str(trained / "models")
    )
    report = json.loads(out.read_text())
    assert report["command"].startswith("ctr evaluate mine --out ")  # what produced it (it said nothing)
    assert report["model"] == "mine" and report["version"] == 1 and report["n_impressions"] == 1200
    metrics = report["metrics"]
    assert set(metrics) == {
        "ctr_auc",
        "ctr_logloss",
        "ctcvr_auc",
        "ctcvr_logloss",
        "cvr_clicked_auc",
        "cvr_clicked_logloss",
        "ctr_logloss_at_slot",  # a slot-1 model: its pCTR / pCTCVR times the logged slot's ratio
        "ctcvr_logloss_at_slot",
        "ctr_logloss_constant",  # the log's click rate for every row: the reference ctr_logloss_at_slot beats
        "ctr_logloss_at_slot_minus_constant",  # by this much, paired over the same rows, beyond the noise
    }
    constant = metrics["ctr_logloss_constant"]
    assert constant["compared_with"] == "ctr_logloss_at_slot" and constant["worse_than_constant"] is False
    difference = metrics["ctr_logloss_at_slot_minus_constant"]
    assert difference["ci95"][1] < 0 and difference["rows"] == constant["n_impressions"]
    assert difference["value"] == pytest.approx(metrics["ctr_logloss_at_slot"]["value"] - constant["value"])
    # the slots' examination (0.6, 0.35) no longer counted as the model's error (0.404 against 0.437)
    assert metrics["ctr_logloss_at_slot"]["value"] < metrics["ctr_logloss"]["value"] - 0.01
    assert 0 < metrics["ctcvr_logloss_at_slot"]["value"] < 1
    low, high = metrics["ctr_auc"]["ci95"]
    assert low <= metrics["ctr_auc"]["value"] <= high and high - low < 0.2
    assert metrics["ctr_auc"]["value"] > 0.6  # even creatives are clicked six times as often
    calibration = report["calibration"]
    assert calibration["position_regime"] == "slot1" and "ratio" in calibration["prediction"]
    assert [p["position"] for p in calibration["per_position"]] == [1, 2, 3]
    for entry in calibration["per_position"]:
        assert entry["n_impressions"] == 400
        assert {"observed_ctr", "mean_pctr", "ctr_ratio", "predicted_ctr", "predicted_over_observed"} <= set(entry)
        assert 0 < entry["observed_ctr"] < 1 and 0 < entry["predicted_ctr"] < 1
        assert entry["predicted_ctr"] == pytest.approx(entry["mean_pctr"] * entry["ctr_ratio"], rel=1e-5)
    ratios = [p["ctr_ratio"] for p in calibration["per_position"]]
    assert ratios[0] == 1.0 and ratios[0] > ratios[1] > ratios[2]  # examination falls with the position
    assert calibration["overall"]["predicted_over_observed"] == pytest.approx(1.0, abs=0.5)
    assert (trained / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["reliability_png"] == str(trained / "report.png")


def test_no_conversions_give_null_with_a_reason(trained):
    write_log(trained / "no_conversions.parquet", requests=200, seed=3, conversions=False)
    out = trained / "no_conversions.json"
    invoke(
        "evaluate",
        "mine",
        "--logs",
        str(trained / "no_conversions.parquet"),
        "--out",
        str(out),
        "-r",
        str(trained / "models"),
    )
    text = out.read_text()
    assert "NaN" not in text
    metrics = json.loads(text)["metrics"]
    assert metrics["ctcvr_auc"]["value"] is None and "no conversions" in metrics["ctcvr_auc"]["reason"]
    assert metrics["ctr_auc"]["value"] is not None


def test_evaluate_on_logs_imports_no_torch(trained):
    """Scoring a held-out log is ONNX Runtime only: the command runs without importing torch."""
    import subprocess
    import sys

    probe = (
        "import atexit, sys; atexit.register(lambda: print('torch imported:', 'torch' in sys.modules)); "
        "from cli.main import app; app(sys.argv[1:])"
    )
    arguments = [
        "evaluate",
        "mine",
        "--logs",
        str(trained / "heldout.parquet"),
        "--out",
        str(trained / "no_torch.json"),
        "-r",
        str(trained / "models"),
    ]
    result = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stdout


def test_an_optional_feature_missing_from_the_log_is_said(world_repository, tmp_path):
    """Every row was scored with the feature's default, without a word in the report or on the terminal."""
    import pyarrow.parquet as pq

    from common.repository import read_manifest

    spec = read_manifest(world_repository, "esmm", 1).feature_spec
    optional = [f.name for f in spec.features if not f.required]
    assert optional, "the world's spec has an optional feature"
    table = pq.read_table(world_repository.parent / "work" / "esmm" / "train.parquet").slice(0, 2000)
    pq.write_table(table, tmp_path / "with.parquet")
    pq.write_table(table.drop_columns(optional), tmp_path / "without.parquet")
    reports = []
    for log in ("with", "without"):
        out = tmp_path / f"{log}.json"
        printed = invoke(
            "evaluate",
            "esmm",
            "--logs",
            str(tmp_path / f"{log}.parquet"),
            "--out",
            str(out),
            "-r",
            str(world_repository),
        )
        reports.append((json.loads(out.read_text())["defaulted_features"], printed))
    (full, full_printed), (defaulted, printed) = reports
    assert full == [] and "no column for" not in full_printed
    assert defaulted == optional and f"no column for {optional}: every row scored with their defaults" in printed
