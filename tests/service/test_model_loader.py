from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.encoder import FeatureEncoder
from common.features import Feature, FeatureSpec
from common.regular_file import NOT_REGULAR
from common.repository import MANIFEST_FILE, MODEL_FILE, read_manifest, version_dir
from service.app import create_app
from service.models.base import ModelLoadError, warm_up_inputs
from service.models.loader import load_newest, load_version
from service.models.manager import load_snapshot
from service.settings import Settings
from tests.support.fifo import fifo_at
from tests.support.tiny_model import SPEC, WeightsEdit, publish_tiny_esmm

ESMM_NEEDS = {"pctr", "pctcvr"}


def settings_for(root: Path, **overrides: object) -> Settings:
    return Settings(model_repository=root, use_cuda=False, **{"ctr_model": "esmm", **overrides})


def test_loads_verifies_and_runs(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path)
    model = load_newest(settings_for(tmp_path), "esmm", ESMM_NEEDS)
    assert (model.name, model.version, model.kind) == ("esmm", 1, "esmm")
    assert model.provider == "CPUExecutionProvider"
    assert model.input_names == ("categorical", "numeric")
    inputs = FeatureEncoder(SPEC).encode({"user_id": "u", "ad_id": [1, 2, 3], "ad_price": [1.0, 2.0, 3.0]}, 3)
    outputs = model.run(inputs.as_inputs())
    assert set(outputs) == {"pctr", "pcvr", "pctcvr"}
    assert all(value.shape == (3,) and value.dtype == np.float32 for value in outputs.values())
    np.testing.assert_allclose(outputs["pctcvr"], outputs["pctr"] * outputs["pcvr"], rtol=1e-6)


def test_the_encoder_takes_the_texts_the_request_checks_take(tmp_path: Path) -> None:
    """The encoder refuses a text past its limit as /v1/score's checks do: a service whose
    CTR_MAX_STRING_CHARS is raised must encode what its checks let through, or a batch holding such a
    request would fail whole (500) after the checks said 200."""
    publish_tiny_esmm(tmp_path)
    model = load_newest(settings_for(tmp_path, max_string_chars=3000), "esmm", ESMM_NEEDS)
    columns = {"user_id": "u", "ad_id": ["a" * 2500], "ad_price": [1.0]}
    assert model.encoder.encode(columns, 1).categorical.shape == (1, 3)
    with pytest.raises(ValueError, match="longer than 1024 characters"):
        load_newest(settings_for(tmp_path), "esmm", ESMM_NEEDS).encoder.encode(columns, 1)


def test_newest_version_wins(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, seed=1)
    publish_tiny_esmm(tmp_path, seed=2)
    assert load_newest(settings_for(tmp_path), "esmm", ESMM_NEEDS).version == 2


def test_altered_model_is_refused_and_the_older_version_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish_tiny_esmm(tmp_path, seed=1)
    publish_tiny_esmm(tmp_path, seed=2)
    path = version_dir(tmp_path, "esmm", 2) / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="service.models.loader"):
        model = load_newest(settings_for(tmp_path), "esmm", ESMM_NEEDS)
    assert model.version == 1
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "esmm" in refusals[0] and "version 2" in refusals[0] and "sha256" in refusals[0]


def ctr_logit_at_warm_up(logit: float) -> WeightsEdit:
    """The CTR head turned so that its logit at the warm-up rows is ``logit``, as a CTR tower's bias shifted by it
    would make it (the tiny model has no bias; its numeric inputs are 0 at warm-up, so the embeddings alone)."""

    def edit(weights: dict[str, np.ndarray]) -> None:
        hidden = weights["table"][warm_up_inputs(SPEC, 1)["categorical"][0]].sum(axis=0)
        weights["w_ctr"] = (hidden * logit / hidden.dot(hidden))[:, None].astype(np.float32)

    return edit


@pytest.mark.parametrize(
    ("logit", "said"), [(100.0, "pctr 1.0"), (-100.0, "pctr 0.0; pctcvr 0.0"), (3.0, None)], ids=["1", "0", "fine"]
)
def test_a_model_whose_probabilities_saturate_at_warm_up_is_warned_of_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, logit: float, said: str | None
) -> None:
    """A CTR head whose logits run past float32's sigmoid range gives pctr exactly 1 (or 0, and pctcvr with it)
    for every candidate: it loaded and served without a word, and the auction dropped every ad of pCTR 0. Now
    its load says so once, naming the outputs, their values and the version; it is served all the same."""
    publish_tiny_esmm(tmp_path, edit=ctr_logit_at_warm_up(logit))
    with caplog.at_level(logging.WARNING, logger="service.models.scoring_model"):
        model = load_newest(settings_for(tmp_path, warmup_batch_sizes=[1, 8]), "esmm", ESMM_NEEDS)
    warned = [r.getMessage() for r in caplog.records if r.name == "service.models.scoring_model"]
    if said is None:
        assert warned == []
        return
    assert warned == [
        f"model esmm version 1 is saturated: its warm-up scores are exactly 0 or 1 at every row ({said}), as a "
        "sigmoid whose logits ran past float32's range gives them: it answers that for every candidate, which "
        "ranks nothing (an auction shows no ad of pCTR 0); it is served all the same: check its training and export"
    ]
    assert model.version == 1


def test_role_output_must_exist(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, outputs=("pctr",))
    with pytest.raises(
        ModelLoadError, match=r"lacks output\(s\) \['pctcvr'\] needed by the role\(s\) it fills \(ctcvr needs"
    ):
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)  # which role: it was not said
    assert load_version(tmp_path, "esmm", 1, settings_for(tmp_path), {"pctr"}).output_names == ("pctr",)


def test_malformed_manifest_is_refused(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path)
    (version_dir(tmp_path, "esmm", 1) / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="malformed"):
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)


NEWER_RELEASE_FIELDS = [
    ({"format_version": 2}, "model.json holds fields ['format_version'] that this release does not know: "),
    ({"position": {"regime": "slot1_per_device"}}, "model.json position regime 'slot1_per_device' is not one"),
    ({"constants": {"temperature": 2.0}}, "model.json constants ['temperature'] are not ones this release knows"),
]


@pytest.mark.parametrize(("values", "said"), NEWER_RELEASE_FIELDS)
def test_a_model_json_a_newer_release_wrote_is_refused_as_such_and_the_older_version_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, values: dict, said: str
) -> None:
    """Refused as "malformed" with a typo hint (a top-level field), or served without what it said (a
    position regime or constant this release does not know: the scores unchanged)."""
    publish_tiny_esmm(tmp_path, seed=1)
    publish_tiny_esmm(tmp_path, seed=2)
    path = version_dir(tmp_path, "esmm", 2) / MANIFEST_FILE
    commit = "fedcba9876543210fedcba9876543210fedcba98"
    path.write_text(json.dumps(json.loads(path.read_text()) | values | {"provenance": {"git": {"commit": commit}}}))
    with pytest.raises(ModelLoadError) as raised:
        load_version(tmp_path, "esmm", 2, settings_for(tmp_path), ESMM_NEEDS)
    assert str(raised.value).startswith(said), raised.value
    assert "written by a newer release (provenance: commit fedcba987654)" in str(raised.value)
    assert "malformed" not in str(raised.value) and "upgrade the service" in str(raised.value)
    with caplog.at_level(logging.WARNING, logger="service.models.loader"):
        assert load_newest(settings_for(tmp_path), "esmm", ESMM_NEEDS).version == 1
    assert any(r.getMessage().startswith(f"model esmm version 2 refused: {said}") for r in caplog.records)


NOT_NUMBERS = [
    ({"position": {"regime": "slot1", "ctr_ratios": [1.0, None]}}, "position ctr_ratios[1] is None, not a finite"),
    ({"position": {"regime": "slot1", "ctr_ratios": [1.0, float("nan")]}}, "position ctr_ratios[1] is nan, not"),
    ({"position": {"regime": "slot1", "ctr_ratios": [1.0, 0.5, -3]}}, "position ctr_ratios[2] is -3, not a finite"),
]


@pytest.mark.parametrize(("values", "said"), NOT_NUMBERS)
def test_slot_ratios_that_are_no_numbers_are_refused(tmp_path: Path, values: dict, said: str) -> None:
    """JSON reads NaN, and nothing looked inside: a null ratio was published in /v1/models for clients to price
    slot k with."""
    publish_tiny_esmm(tmp_path)
    path = version_dir(tmp_path, "esmm", 1) / MANIFEST_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | values))
    with pytest.raises(ModelLoadError, match=r"model\.json is malformed: " + re.escape(said)):
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)


def test_a_statistic_a_newer_release_added_is_named_not_a_python_error(tmp_path: Path) -> None:
    """``NumericStats.__init__() got an unexpected keyword argument 'p99'`` was the load's whole reason."""
    publish_tiny_esmm(tmp_path)
    path = version_dir(tmp_path, "esmm", 1) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["feature_spec"]["stats"]["ad_price"]["p99"] = 30.0
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError) as raised:
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)
    assert str(raised.value).startswith(
        "model.json feature spec stats of 'ad_price' holds fields ['p99'] that this release does not know: it was "
        "probably written by a newer release (it records no provenance to say which code wrote it); upgrade"
    ), raised.value


# The fields of model.json as its first writer (the first commit's Manifest.to_json) wrote them: no files,
# position nor provenance, and each numeric feature's statistics without a training range.
FIRST_RELEASE_FIELDS = (
    *("name", "version", "kind", "opset", "inputs", "outputs", "feature_spec", "onnx_sha256", "created"),
    *("constants", "metrics", "data_fingerprint", "training"),
)


def as_the_first_release_wrote_it(manifest: dict) -> dict:
    written = {field: manifest[field] for field in FIRST_RELEASE_FIELDS}
    stats = written["feature_spec"]["stats"]
    written["feature_spec"]["stats"] = {name: {"mean": s["mean"], "std": s["std"]} for name, s in stats.items()}
    return written


@pytest.mark.parametrize(
    ("rewrite", "regime"),
    [
        (as_the_first_release_wrote_it, "logged"),
        (lambda m: as_the_first_release_wrote_it(m) | {"files": {}, "position": {"regime": "logged"}}, "logged"),
        (  # the first with position regimes (a418e55): a slot-1 model's ratios, no provenance yet
            lambda m: (
                as_the_first_release_wrote_it(m)
                | {"files": {}, "position": {"regime": "slot1", "ctr_ratios": [1.0, 0.4]}}
            ),
            "slot1",
        ),
        (lambda m: m | {"constants": {"b": 0.031}, "position": {"regime": "logged"}}, "logged"),  # adversarial_ctr
        (lambda m: m | {"position": None}, "logged"),  # no CTR model (the exporter's None)
    ],
)
def test_a_model_json_as_earlier_releases_wrote_it_still_loads(
    tmp_path: Path, rewrite: Callable[[dict], dict], regime: str
) -> None:
    """What this release refuses as unknown (fields, statistics, position fields and regimes, constants) is
    nothing an earlier release wrote: a service upgraded over their versions serves them."""
    publish_tiny_esmm(tmp_path)
    path = version_dir(tmp_path, "esmm", 1) / MANIFEST_FILE
    path.write_text(json.dumps(rewrite(json.loads(path.read_text())), indent=2, sort_keys=True))
    model = load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)
    assert (model.version, model.manifest.regime) == (1, regime)
    assert set(model.run(FeatureEncoder(SPEC).encode({"user_id": "u", "ad_id": [1], "ad_price": [2.0]}, 1).as_inputs()))


def test_missing_model_file_is_refused(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path)
    (version_dir(tmp_path, "esmm", 1) / MODEL_FILE).unlink()
    with pytest.raises(ModelLoadError, match="cannot be read"):
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)


def test_spec_that_does_not_fit_the_graph_is_refused(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path)
    directory = version_dir(tmp_path, "esmm", 1)
    manifest = read_manifest(tmp_path, "esmm", 1)
    extra = Feature("campaign", "categorical", "candidate", buckets=5)
    manifest.feature_spec = FeatureSpec((*SPEC.features, extra), SPEC.stats)
    (directory / MANIFEST_FILE).write_text(manifest.to_json())
    with pytest.raises(ModelLoadError, match="width 3"):
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)


def test_bucket_counts_past_the_graph_s_embedding_table_are_refused_at_the_load(tmp_path: Path) -> None:
    """model.json is covered by no checksum; with ``ad_id``'s buckets grown past the graph's table the
    version loaded and warmed up on zeros, and every request hashing past the table's end got a 500."""
    publish_tiny_esmm(tmp_path)
    directory = version_dir(tmp_path, "esmm", 1)
    manifest = read_manifest(tmp_path, "esmm", 1)
    grown = tuple(Feature(f.name, f.kind, f.side, buckets=4096) if f.name == "ad_id" else f for f in SPEC.features)
    manifest.feature_spec = FeatureSpec(grown, SPEC.stats)
    (directory / MANIFEST_FILE).write_text(manifest.to_json())
    with pytest.raises(ModelLoadError, match="warm-up at batch size 1 failed"):
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path), ESMM_NEEDS)


def test_no_versions(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no versions of model 'esmm' in the model repository"):
        load_newest(settings_for(tmp_path), "esmm", ESMM_NEEDS)
    with pytest.raises(ModelLoadError, match=r"no versions of model 'esmm' \(the model repository does not exist\)"):
        load_newest(settings_for(tmp_path / "misspelt"), "esmm", ESMM_NEEDS)


def test_distinct_role_models_each_load(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, name="ctr_only", outputs=("pctr",))
    publish_tiny_esmm(tmp_path)
    models = load_snapshot(settings_for(tmp_path, ctr_model="ctr_only"))
    assert models.ready
    assert models.for_role("ctr").name == "ctr_only"
    assert models.for_role("ctcvr").name == "esmm"


def test_a_snapshot_serves_the_version_the_version_policy_selects_as_the_service_does(tmp_path: Path) -> None:
    """``ctr score`` scored with the newest version while the service, its policy pinning version 1, served 1."""
    for seed in (1, 2):
        publish_tiny_esmm(tmp_path, seed=seed)
    (tmp_path / "esmm" / "config.toml").write_text("[serving]\nversion_policy = { specific = [1] }\n", encoding="utf-8")
    assert load_snapshot(settings_for(tmp_path)).for_role("ctr").version == 1
    with TestClient(create_app(settings_for(tmp_path))) as client:
        assert client.get("/v2/models/esmm").json()["versions"] == ["1"]
    (tmp_path / "esmm" / "config.toml").write_text("[serving]\nversion_policy = { servd = 1 }\n", encoding="utf-8")
    assert "serving settings: " in load_snapshot(settings_for(tmp_path)).errors["esmm"]


def test_no_loadable_version_starts_but_is_not_ready(tmp_path: Path) -> None:
    """With polling on, a version published later would serve: the service starts, not ready."""
    publish_tiny_esmm(tmp_path, outputs=("pctr",))  # cannot fill the ctcvr role
    with TestClient(create_app(settings_for(tmp_path, poll_interval_s=30))) as client:
        assert client.get("/v2/health/live").status_code == 200
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False and "esmm" in ready.json()["unavailable"]
        response = client.post("/v1/score", json={"candidates": [{"ad_id": 1}]})
        assert response.status_code == 503
        assert "esmm" in response.json()["error"]
        listing = client.get("/v1/models").json()["models"]
        assert listing[0]["name"] == "esmm" and listing[0]["ready"] is False


def test_empty_repository_is_not_ready_where_an_admin_load_could_serve_it_later(tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path / "absent", admin_token="x" * 16))) as client:
        assert client.get("/v2/health/ready").status_code == 503
        response = client.post("/v1/score", json={"candidates": [{"ad_id": 1}]})
        assert response.status_code == 503
        assert response.json() == {"error": response.json()["error"], "field": None}
        assert "'esmm'" in response.json()["error"]


@pytest.mark.parametrize("absent", [True, False], ids=["no repository", "no loadable version"])
def test_a_role_model_nothing_would_load_later_stops_the_start(
    tmp_path: Path, absent: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """No polling and no admin API: it started not ready for good (live, so no supervisor restarted it to
    find the models published meanwhile; a wheel's `ctr serve` run outside the checkout sat so)."""
    from service.models.snapshot import NothingWouldLoad

    if not absent:
        publish_tiny_esmm(tmp_path, outputs=("pctr",))  # cannot fill the ctcvr role
    root = tmp_path / "absent" if absent else tmp_path
    with pytest.raises(NothingWouldLoad) as refused, TestClient(create_app(settings_for(root))):
        pass
    assert str(refused.value).startswith("not starting: role model(s) esmm not served, and nothing would load them")
    assert str(refused.value) in caplog.text
    # a version refused is not mended by publishing (`ctr prepare` trains no model that has a whole version): the
    # advice was "publish them first" either way
    fix = "publish them first (ctr prepare, ctr export)" if absent else "mend what the line above says of esmm, whose"
    assert f"(CTR_POLL_INTERVAL_S is 0 and CTR_ADMIN_TOKEN unset): {fix}" in str(refused.value)
    assert ("ctr prepare" in str(refused.value)) is absent
    # a model the service is not ready without is said as an error (an optional one, as a warning)
    [unserved] = [r for r in caplog.records if r.getMessage().startswith("model esmm is not served: ")]
    assert unserved.levelno == logging.ERROR


@pytest.mark.parametrize("file", [MODEL_FILE, MANIFEST_FILE])
def test_a_version_with_a_fifo_for_a_file_is_refused_at_once_and_the_older_version_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, file: str
) -> None:
    """The poll thread waited in ``open`` for a writer, the models' lock held: ``ctr serve`` hung at "Waiting for
    application startup.", deaf to SIGTERM. Its name, not its path, is said: a refusal's reason reaches clients."""
    publish_tiny_esmm(tmp_path, seed=1)
    publish_tiny_esmm(tmp_path, seed=2)
    fifo = fifo_at(version_dir(tmp_path, "esmm", 2) / file)
    with fifo, caplog.at_level(logging.WARNING, logger="service.models.loader"):
        model = load_newest(settings_for(tmp_path), "esmm", ESMM_NEEDS)
    assert model.version == 1
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals == [f"model esmm version 2 refused: {file} {NOT_REGULAR}"]


@pytest.mark.parametrize("batch", [10**13, 2**62])
def test_a_warm_up_batch_size_past_memory_is_refused_naming_the_setting(tmp_path: Path, batch: int) -> None:
    """``CTR_WARMUP_BATCH_SIZES=99999999999`` passes the settings (a sound bound is each model's batch size,
    which they cannot see): every version was refused with numpy's MemoryError (or, past 2**61 rows, its
    ValueError) as an "unexpected error", a traceback logged for each, the setting named nowhere."""
    publish_tiny_esmm(tmp_path)
    with pytest.raises(ModelLoadError, match=rf"warm-up at batch size {batch:,}: .*CTR_WARMUP_BATCH_SIZES"):
        load_version(tmp_path, "esmm", 1, settings_for(tmp_path, warmup_batch_sizes=(1, batch)), ESMM_NEEDS)
