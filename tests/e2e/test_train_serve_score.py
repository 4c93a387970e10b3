"""End to end: the world's logs -> `ctr train` -> `ctr export` -> `ctr serve` (real uvicorn) -> scores."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import httpx
import numpy as np
import onnxruntime as ort
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from common.encoder import FeatureEncoder
from common.repository import MODEL_FILE, read_manifest, version_dir
from service.models.manager import load_snapshot
from service.score.pipeline import prepare
from service.settings import Settings
from tests.support.checkout import ROOT
from tests.support.server import running_server
from training.fitting.dataset import ImpressionTensors

CLI = [sys.executable, "-m", "cli.main"]


def sample_request(root, candidates: int, seed: int) -> dict:
    result = subprocess.run(
        [*CLI, "sample-request", "--candidates", str(candidates), "--seed", str(seed), "--repository", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def offline_scores(root, body: dict, model: str = "esmm") -> dict[str, np.ndarray]:
    """What the exported model gives for the body, computed without the service."""
    manifest = read_manifest(root, model, 1)
    candidates = body["candidates"]
    columns = dict(body["context"])
    for name in candidates[0]:
        columns[name] = [c[name] for c in candidates]
    encoded = FeatureEncoder(manifest.feature_spec).encode(columns, len(candidates))
    session = ort.InferenceSession(str(version_dir(root, model, 1) / MODEL_FILE))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, encoded.as_inputs()), strict=True))


def test_ctr_serve_answers_a_sample_request(world_repository, tmp_path):
    """Debiased ESMM and the adversarial CTR model (CTR_CTR_MODEL=ctr; by default esmm fills both roles),
    trained tiny and served: every number on the wire is for slot 1, pcvr is the ctcvr model's own pCVR,
    and pcvr * pctr = pctcvr exactly."""
    body = sample_request(world_repository, candidates=25, seed=3)
    assert len(body["candidates"]) == 25
    served = running_server(world_repository, tmp_path / "serve.log", command=[*CLI, "serve"], ctr_model="ctr")
    with served as (url, _):
        response = httpx.post(f"{url}/v1/score", json=body, timeout=30.0)
        listed = {m["name"]: m for m in httpx.get(f"{url}/v1/models", timeout=30.0).json()["models"]}
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["models"] == {"ctr": {"name": "ctr", "version": 1}, "ctcvr": {"name": "esmm", "version": 1}}
    scores = result["scores"]
    pctr = np.array([s["pctr"] for s in scores])
    pctcvr = np.array([s["pctcvr"] for s in scores])
    pcvr = np.array([s["pcvr"] for s in scores])
    for values in (pctr, pctcvr, pcvr):
        assert ((values >= 0) & (values <= 1)).all()
    assert all(s["pcvr"] * s["pctr"] == s["pctcvr"] for s in scores)  # the identity, on the wire
    esmm = offline_scores(world_repository, body, "esmm")
    debiased = offline_scores(world_repository, body, "ctr")
    np.testing.assert_allclose(pctr, debiased["pctr"], rtol=0, atol=1e-7)  # pCTR: the adversarial model
    np.testing.assert_allclose(pcvr, esmm["pcvr"], rtol=0, atol=1e-5)  # pCVR: the ctcvr model's own
    assert not np.allclose(pctr, esmm["pctr"], rtol=0, atol=1e-7)
    for name in ("ctr", "esmm"):  # both serve slot 1, with the slot CTR ratios each learned
        position = listed[name]["position"]
        assert position["regime"] == "slot1"
        ratios = position["ctr_ratios"]
        assert len(ratios) == 5 and ratios[0] == 1.0 and all(0.0 < r < 1.5 for r in ratios)
        assert read_manifest(world_repository, name, 1).position == position


def test_evaluate_serving_measures_the_service_over_http(world_repository, tmp_path, caplog):
    """`ctr evaluate serving` scores a uniformly displayed held-out day through /v1/score only."""
    out = tmp_path / "serving.json"
    with running_server(world_repository, tmp_path / "serve.log", access_log="false") as (url, _):
        result = CliRunner().invoke(
            app, ["evaluate", "serving", "--url", url, "--out", str(out), "--repository", str(world_repository)]
        )
        elsewhere = CliRunner().invoke(app, ["evaluate", "serving", "--url", url, "-r", str(tmp_path / "absent")])
        other = tmp_path / "other"  # the served model's config, none of its versions: maybe another world
        (other / "esmm").mkdir(parents=True)
        # a held-out day of 300 requests, not 3,000: only what the report records of the repository is read here
        config = (world_repository / "esmm" / "config.toml").read_text()
        shorter = config.replace("heldout_requests = 3000", "heldout_requests = 300")
        assert shorter != config
        (other / "esmm" / "config.toml").write_text(shorter)
        unheld = tmp_path / "unheld.json"
        arguments = ["evaluate", "serving", "--url", url, "-r", str(other), "--out", str(unheld)]
        with caplog.at_level(logging.WARNING, logger="training.evaluation.serving_calibration"):
            assert CliRunner().invoke(app, arguments).exit_code == 0
    assert result.exit_code == 0, result.output + repr(result.exception)
    # a report of another repository's world said it and recorded what it read (the same numbers, silently)
    assert f"{other} holds no esmm version 1: the held-out day is drawn from the world of" in caplog.text
    assert json.loads(unheld.read_text())["versions_not_in_repository"] == ["esmm version 1"]
    # the served model's world is read from this side's repository: its absence is said as such, not as the URL's
    assert "the service serves 'esmm', whose world this reads from" in str(elsewhere.exception)
    report = json.loads(out.read_text())
    assert report["command"] == f"ctr evaluate serving --out {out} --repository {world_repository} --url {url}"
    assert report["repository"] == str(world_repository) and report["versions_not_in_repository"] == []
    assert report["heldout_seed"] == 1_000_003 and isinstance(report["world"], dict)
    assert report["n_impressions"] == 3000 * 5 and report["heldout_policy"] == "uniform"
    assert report["models"]["ctcvr"]["name"] == "esmm" and report["models"]["ctr"]["position"]["regime"] == "slot1"
    assert report["models"]["ctr"]["name"] == "esmm"  # the default: one model fills both roles
    assert report["pctcvr_equals_pctr_times_pcvr_max_abs"] < 1e-12
    for name in ("pctr", "pctcvr", "pcvr"):
        overall = report["overall"][name]
        assert 0.0 < overall["mean_served_over_true"] < 10.0 and 0.0 <= overall["calibration_error"] < 1.0
        assert 0.5 < overall["auc_of_the_truth"] <= 1.0
    assert len(report["by_true_ctr_decile"]) == 10
    assert out.with_suffix(".png").stat().st_size > 0


def test_training_and_serving_encode_the_same_rows_identically(world_repository):
    """The rows of logged requests, read from Parquet by the trainer and sent as JSON to the service."""
    manifest = read_manifest(world_repository, "esmm", 1)
    spec = manifest.feature_spec
    table = pq.read_table(world_repository.parent / "work" / "esmm" / "train.parquet")
    models = load_snapshot(Settings(model_repository=world_repository, use_cuda=False))
    esmm = models.model("esmm")
    requests = []
    for request_id in ["d0-r0", "d0-r17", "d1-r2999"]:
        rows = table.filter(pq.filters_to_expression([("request_id", "=", request_id)]))
        assert rows.num_rows > 0
        training = ImpressionTensors.from_table(rows, FeatureEncoder(spec)).tensors
        records = rows.to_pylist()
        body = {
            "context": {f.name: records[0][f.name] for f in spec.features if f.side == "context"},
            "candidates": [{f.name: r[f.name] for f in spec.features if f.side == "candidate"} for r in records],
        }
        prepared = prepare(json.dumps(body).encode(), models, Settings(model_repository=world_repository))
        serving = prepared.encoded(esmm)
        assert np.array_equal(serving["categorical"], training["categorical"].numpy())
        assert np.array_equal(serving["numeric"], training["numeric"].numpy())
        requests.append((prepared, training))
    # the batcher encodes the three requests' rows together: still the training tensors, row for row
    batch = esmm.encode([(prepared.rows, 0, prepared.n_candidates) for prepared, _ in requests])
    for name in ("categorical", "numeric"):
        assert np.array_equal(batch[name], np.concatenate([training[name].numpy() for _, training in requests]))


def test_evaluate_writes_the_report(world_repository, tmp_path):
    out = tmp_path / "esmm.json"
    result = CliRunner().invoke(app, ["evaluate", "esmm", "--out", str(out), "--repository", str(world_repository)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    for key in ("ctr_auc", "cvr_auc_entire_space", "cvr_auc_clicked", "ctcvr_auc", "n_impressions"):
        assert key in report
    assert report["n_impressions"] == 3000 * 5
    for key in ("cvr_auc_entire_space", "cvr_auc_clicked"):
        assert 0.0 <= report[key] <= 1.0
    for key in ("ctr_auc", "ctcvr_auc"):
        assert 0.55 < report[key] <= 1.0, (key, report[key])  # better than chance even when tiny
    assert report["true_cvr_mean_clicked"] > report["true_cvr_mean_unclicked"]  # the selection bias is real
    # the debiased model serves slot-1 probabilities: measured against the slot-1 truth too
    assert report["position_regime"] == "slot1"
    for key in ("ctr_slot1_logloss", "ctr_slot1_calibration_error", "ctcvr_slot1_logloss"):
        assert 0.0 < report[key] < 1.0, (key, report[key])
    assert report["ctr_slot1_mean_pred_over_true"] < report["ctr_mean_pred_over_observed"]  # observed <= true


def test_the_committed_config_builds_its_model():
    from training.config_world import world_spec
    from training.model_config import ModelConfig
    from training.models.registry import build_model

    config = ModelConfig.load(ROOT / "models", "esmm")
    assert config.kind == "esmm_debiased"  # the served ESMM carries the position bypass
    model = build_model(config.kind, world_spec(config), config.model)
    assert model.config.hidden == [360, 200, 80] and model.bypass is not None


@pytest.mark.parametrize("candidates", [1, 7])
def test_sample_request_is_deterministic(world_repository, candidates):
    assert sample_request(world_repository, candidates, 5) == sample_request(world_repository, candidates, 5)


def test_the_served_ctr_model_has_only_feature_inputs_and_records_b(world_repository):
    manifest = read_manifest(world_repository, "ctr", 1)
    assert [i.name for i in manifest.inputs] == ["categorical", "numeric"]
    assert [o.name for o in manifest.outputs] == ["pctr"]
    session = ort.InferenceSession(str(version_dir(world_repository, "ctr", 1) / MODEL_FILE))
    assert [i.name for i in session.get_inputs()] == ["categorical", "numeric"]
    logs = pq.read_table(world_repository.parent / "work" / "ctr" / "train.parquet", columns=["position", "click"])
    clicks = np.asarray(logs.column("click"))[np.asarray(logs.column("position")) == 1]
    assert clicks.size > 0
    assert manifest.constants["b"] == pytest.approx(clicks.mean(), rel=1e-6)  # the position-1 CTR of the logs


def test_evaluate_ctr_compares_the_debiasing_methods(world_repository, tmp_path):
    out = tmp_path / "ctr_debias.json"
    args = ["evaluate", "ctr", "--out", str(out), "--repository", str(world_repository)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    methods = report["methods"]
    assert {"naive", "position_feature", "served", "adversarial_bypass_0.9999", "adversarial_no_bypass_0.9999"} <= set(
        methods
    )
    for scores in methods.values():
        assert set(scores) >= {"rus_auc", "rus_logloss", "calibration_error", "mean_pred_over_true"}
        assert 0.0 <= scores["rus_auc"] <= 1.0 and scores["calibration_error"] >= 0.0
    assert 0.0 <= report["pcvr_clipped_fraction"] <= 1.0
    served = read_manifest(world_repository, "ctr", 1)  # which model "served" is, on any machine
    assert (report["version"], report["onnx_sha256"]) == (1, served.onnx_sha256)
