"""Version policies, admin load/unload with a bearer token, and refusal of bad versions (in process)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.repository import MODEL_FILE, version_dir
from service.app import create_app
from service.batching.batcher import Batcher
from service.batching.policy import BatchConfig, Work, admission
from service.models.config import ServingConfig, VersionPolicy, read_serving_config
from service.models.manager import ModelManager
from service.settings import Settings
from tests.support.app_client import AUTH, BODY, TOKEN, app_client, bare_manager, make_repository
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually, observe_polls


def gated_batcher(release: threading.Event) -> Batcher:
    """A started batcher whose runs wait for ``release``."""

    def run(inputs: dict) -> dict:
        release.wait(10)
        return {"y": inputs["x"]}

    batcher = Batcher(run, BatchConfig(max_batch_size=8, max_queue_delay_us=0))
    batcher.start()
    return batcher


def three_requests(batcher: Batcher) -> list[Work]:
    deadline = asyncio.get_running_loop().time() + 10
    return [batcher.enqueue({"x": np.ones((1, 1), np.float32)}, 1, deadline) for _ in range(3)]


def test_serving_config_parsing(tmp_path: Path) -> None:
    assert read_serving_config(tmp_path, "absent") == ServingConfig()
    config = ServingConfig.from_table({"max_batch_size": 8, "max_queue_items": 64, "version_policy": {"latest": 2}})
    assert (config.batch.max_batch_size, config.version_policy) == (8, VersionPolicy(latest=2))
    assert VersionPolicy.parse({"specific": [3, 1]}).select([1, 2, 3]) == [3, 1]
    assert ServingConfig.from_table({"inline_max_items": 0}).batch.inline_max_items == 0
    assert ServingConfig.from_table({"inline_max_items": 32}).batch.inline_max_items == 32
    for bad, message in [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"inline_max_items": -1}, "inline_max_items must be a non-negative integer"),
        ({"max_batch_size": 8, "max_queue_items": 4}, "one full batch"),
        ({"version_policy": {"newest": 1}}, r"unknown policy 'newest' \(known: all, latest, specific\)"),
        ({"version_policy": {"latest": 0}}, "latest"),
        ({"version_policy": {"all": False}}, "version_policy.all must be true, not False"),
        (  # the nearest key named, as a config.toml's other sections do
            {"max_batch_sise": 64},
            r"serving.max_batch_sise is not a setting \(did you mean 'max_batch_size'\?\) \(known: inline_max_items, ",
        ),
        ({"batch": 1, "delay": 2}, "serving.batch, serving.delay are not settings"),
    ]:
        with pytest.raises(ValueError, match=message):
            ServingConfig.from_table(bad)


def test_a_misspelt_serving_key_leaves_the_model_unserved_saying_which(tmp_path: Path) -> None:
    """``max_batch_sise`` was ignored without a word and the default batch size served."""
    root = make_repository(tmp_path, 1, "max_batch_sise = 64")
    with app_client(root) as client:
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        reason = ready.json()["unavailable"]["esmm"]
        assert reason.startswith(
            "serving settings: serving.max_batch_sise is not a setting (did you mean 'max_batch_size'?) (known: "
        ), reason


def test_a_misspelt_serving_table_leaves_the_model_unserved_saying_which(tmp_path: Path) -> None:
    """``[servng]`` was never read: the model served with the default settings without a word."""
    root = make_repository(tmp_path, 1)
    (root / "esmm" / "config.toml").write_text('kind = "esmm"\n[servng]\nmax_batch_size = 64\n')
    with app_client(root) as client:
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        reason = ready.json()["unavailable"]["esmm"]
        assert "[servng] is no table of config.toml (did you mean [serving]?)" in reason, reason


LATE_BATCHES = (
    "serving settings: serving.max_queue_delay_us (5000000 µs) must be less than the request deadline "
    "CTR_REQUEST_TIMEOUT_MS (1000 ms = 1000000 µs): a batch waiting that long to fill answers its requests 504"
)


def test_a_fill_wait_as_long_as_the_request_deadline_is_refused_at_load(tmp_path: Path) -> None:
    """A 5 s ``max_queue_delay_us`` under the 1 s deadline loaded, reported ready and answered every request
    504; now such a model is refused, at start (not ready, saying why) and at a reload (the older version
    keeps serving). With batching off the wait is never taken, and a longer deadline takes it."""
    root = make_repository(tmp_path, 1, "max_queue_delay_us = 5000000")
    with app_client(root) as client:
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json()["unavailable"]["esmm"] == LATE_BATCHES
    for settings in ({"batching": False}, {"request_timeout_ms": 5001}):
        with app_client(root, **settings) as client:
            assert client.get("/v2/health/ready").status_code == 200
    (root / "esmm" / "config.toml").unlink()
    with app_client(root) as client:
        (root / "esmm" / "config.toml").write_text('kind = "esmm"\n[serving]\nmax_queue_delay_us = 1000000\n')
        publish_tiny_esmm(root, seed=1)
        response = client.post("/v2/repository/models/esmm/load", headers=AUTH)
        assert response.status_code == 400
        assert "serving.max_queue_delay_us (1000000 µs) must be less than" in response.json()["error"]
        assert client.get("/v2/models/esmm").json()["versions"] == ["1"]
        assert client.post("/v1/score", json=BODY).status_code == 200


def test_a_table_the_service_does_not_read_is_left_to_the_trainer(tmp_path: Path) -> None:
    """A table a newer trainer writes must not stop a service from loading the model."""
    root = make_repository(tmp_path, 1)
    (root / "esmm" / "config.toml").write_text('kind = "esmm"\n[export]\nopset = 18\n[service]\nowner = "ads"\n')
    with app_client(root) as client:
        assert client.get("/v2/health/ready").status_code == 200


def test_latest_two_versions_served_and_addressable(tmp_path: Path) -> None:
    root = make_repository(tmp_path, 3, "version_policy = { latest = 2 }")
    with app_client(root) as client:
        assert client.get("/v2/models/esmm").json()["versions"] == ["2", "3"]
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 3
        assert client.get("/v2/models/esmm/versions/2/ready").status_code == 200
        assert client.get("/v2/models/esmm/versions/1/ready").status_code == 404


def test_specific_versions(tmp_path: Path) -> None:
    root = make_repository(tmp_path, 3, "version_policy = { specific = [1] }")
    with app_client(root) as client:
        assert client.get("/v2/models/esmm").json()["versions"] == ["1"]


def test_a_specific_version_not_on_disk_is_named_and_only_versions_tried_are_listed(tmp_path: Path) -> None:
    """It said "tried [2, 1]": 7 was wanted, 1 and 2 never tried."""
    root = make_repository(tmp_path, 2, "version_policy = { specific = [7] }")
    with app_client(root) as client:
        response = client.post("/v2/repository/models/esmm/load", headers=AUTH)
        assert response.status_code == 400
        assert response.json()["error"] == (
            "model 'esmm' not loaded: no loadable version of model 'esmm' (versions [7] of its version policy "
            "are not in the repository, which holds [1, 2])"
        )
        (root / "esmm" / "config.toml").write_text('kind = "esmm"\n[serving]\nversion_policy = { specific = [2, 7] }\n')
        (version_dir(root, "esmm", 2) / MODEL_FILE).write_bytes(b"not an onnx model")
        error = client.post("/v2/repository/models/esmm/load", headers=AUTH).json()["error"]
        assert "(versions [7] of its version policy are not in the repository, which holds [1, 2]; tried [2]; " in error
        assert "version 2: model.onnx sha256" in error and "version 1" not in error


def test_admin_needs_the_bearer_token(tmp_path: Path) -> None:
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}):
            response = client.post("/v2/repository/models/esmm/load", headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert client.post("/v2/repository/models/..%2Fetc/load", headers=AUTH).status_code in (400, 404)
        assert client.post("/v2/repository/models/a%20b/load", headers=AUTH).status_code == 400


def test_unloading_a_role_model_warns_that_the_service_is_not_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An admin unload of the model filling both roles was answered 200 and said at INFO ("model esmm
    unloaded"), the service unready from then on without a word; a model no role needs is unloaded as before."""
    import logging

    root = make_repository(tmp_path, 1)
    publish_tiny_esmm(root, name="spare")
    caplog.set_level(logging.INFO, logger="service.models.manager")
    with app_client(root, poll_interval_s=30) as client:
        assert client.post("/v2/repository/models/spare/load", headers=AUTH).status_code == 200
        assert client.post("/v2/repository/models/spare/unload", headers=AUTH).status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post("/v2/repository/models/esmm/unload", headers=AUTH).status_code == 200
        assert client.get("/v2/health/ready").status_code == 503
    said = {r.getMessage(): r.levelno for r in caplog.records if " unloaded" in r.getMessage()}
    assert said == {
        "model spare unloaded (polling leaves it unloaded until a load)": logging.INFO,
        "model esmm unloaded (polling leaves it unloaded until a load): it fills 2 roles (ctr, ctcvr), so the "
        "service is not ready (/v2/health/ready and /v1/score answer 503) until it is loaded again": logging.WARNING,
    }


def test_loads_of_names_no_model_has_leave_nothing_behind(tmp_path: Path) -> None:
    """Each admin load of a name with no folder in the repository kept a metrics series (refusals 0) and an
    error in the snapshot until the restart: 500 random names took /metrics from 141 lines to 641 (a soak
    test). A model of the repository keeps its series from its first load."""
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        for n in range(20):
            response = client.post(f"/v2/repository/models/nobody{n}/load", headers=AUTH)
            assert response.status_code in (400, 404, 409), response.text
        assert "nobody" not in client.get("/metrics").text
        assert not any(name.startswith("nobody") for name in client.app.state.models.errors)
        assert 'ctr_model_version_refusals_total{model="esmm"} 0' in client.get("/metrics").text


def test_a_load_with_a_config_or_files_is_refused_and_loads_nothing(tmp_path: Path) -> None:
    """Triton's load parameters would override the configuration or upload the model: the service never
    does either, so a load that asks for it is a 400 naming them, not a 200 that ignored them."""
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        publish_tiny_esmm(root, seed=5)  # version 2 on disk, not loaded
        for parameters in ({"config": '{"max_batch_size": 8}'}, {"file:1/model.onnx": "eHg="}):
            response = client.post("/v2/repository/models/esmm/load", headers=AUTH, json={"parameters": parameters})
            assert response.status_code == 400 and response.json()["field"] == "parameters", response.text
            assert f"load parameters {sorted(parameters)} are not supported" in response.json()["error"]
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 1
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH, json={"parameters": {}}).status_code == 200
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH, content=b"[1]").status_code == 400
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH, content=b"{").status_code == 400


def test_a_refused_load_names_its_parameters_within_bounds(tmp_path: Path) -> None:
    """Every key of a refused load's parameters was quoted in full: a 1 MB key made a 1 MB answer."""
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        parameters = {"k" * 1_000_000: 1} | {f"file:{i}/model.onnx": "eHg=" for i in range(9)}
        response = client.post("/v2/repository/models/esmm/load", headers=AUTH, json={"parameters": parameters})
        assert response.status_code == 400 and len(response.content) < 2_000, len(response.content)
        error = response.json()["error"]
        assert error.startswith("load parameters ['file:0/model.onnx', ") and ", and 5 more] are not" in error


def test_the_repository_extension_is_listed_only_with_its_routes(tmp_path: Path) -> None:
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        assert "model_repository" in client.get("/v2").json()["extensions"]
    with TestClient(create_app(Settings(model_repository=root, ctr_model="esmm", use_cuda=False))) as client:
        assert "model_repository" not in client.get("/v2").json()["extensions"]
        assert client.post("/v2/repository/index").status_code == 404


def test_reload_swaps_in_a_new_version_and_refuses_a_corrupt_one(tmp_path: Path) -> None:
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        publish_tiny_esmm(root, seed=5)  # version 2, good
        publish_tiny_esmm(root, seed=6)  # version 3, then corrupted
        (version_dir(root, "esmm", 3) / MODEL_FILE).write_bytes(b"not an onnx model")
        response = client.post("/v2/repository/models/esmm/load", headers=AUTH)
        assert response.status_code == 409, response.text  # version 3 refused, named with its reason
        assert response.json()["error"].startswith("model 'esmm': version 3 refused: model.onnx sha256")
        assert response.json()["error"].endswith("(serving versions [2])")
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 2
        index = client.post("/v2/repository/index", headers=AUTH).json()
        assert index[0] == {"name": "esmm", "version": "2", "state": "READY", "reason": ""}
        assert index[1]["version"] == "3" and index[1]["state"] == "UNAVAILABLE" and "sha256" in index[1]["reason"]
        refusals = 'ctr_model_version_refusals_total{model="esmm"} 1'  # the metric an alert on it reads
        assert refusals in client.get("/metrics").text
        assert client.post("/v2/repository/models/esmm/unload", headers=AUTH).status_code == 200
        assert client.post("/v1/score", json=BODY).status_code == 503
        assert client.get("/v2/health/ready").status_code == 503
        assert client.post("/v2/repository/models/esmm/unload", headers=AUTH).status_code == 404
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 409  # 3 still refused
        assert client.get("/v2/health/ready").status_code == 200


def test_the_index_says_when_a_refused_version_changed_since(tmp_path: Path) -> None:
    """With polling off, a refused version deleted and published again whole under its number was still listed
    with the old refusal's reason (the next admin load served it): the reason now says its files changed since."""
    import shutil

    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        broken = version_dir(root, "esmm", publish_tiny_esmm(root, seed=5))
        (broken / MODEL_FILE).write_bytes(b"\0")
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 409
        (refused,) = [e for e in client.post("/v2/repository/index", headers=AUTH).json() if e.get("version") == "2"]
        assert "sha256" in refused["reason"] and "changed on disk since" not in refused["reason"]
        shutil.rmtree(broken)
        publish_tiny_esmm(root, seed=5)  # version 2 again, whole
        (refused,) = [e for e in client.post("/v2/repository/index", headers=AUTH).json() if e.get("version") == "2"]
        assert refused["state"] == "UNAVAILABLE" and refused["reason"].endswith(
            "its files changed on disk since: the next load (an admin load, or polling) reads them again"
        )
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).json()["versions"] == [2]


def test_the_index_forgets_a_refused_version_deleted_and_says_when_the_model_is_not_served(tmp_path: Path) -> None:
    """A refused version deleted from disk stayed listed as UNAVAILABLE; and a model with refusals but no
    version served listed only the refusals, never that the model itself was not served."""
    import shutil

    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        for seed in (5, 6):  # versions 2 and 3, both corrupted
            (version_dir(root, "esmm", publish_tiny_esmm(root, seed=seed)) / MODEL_FILE).write_bytes(b"\0")
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 409
        assert client.post("/v2/repository/models/esmm/unload", headers=AUTH).status_code == 200
        index = client.post("/v2/repository/index", headers=AUTH).json()
        assert [(entry.get("version"), entry["state"]) for entry in index] == [
            ("2", "UNAVAILABLE"),
            ("3", "UNAVAILABLE"),
            (None, "UNAVAILABLE"),
        ]
        assert index[-1] == {"name": "esmm", "state": "UNAVAILABLE", "reason": "unloaded"}
        shutil.rmtree(version_dir(root, "esmm", 3))
        index = client.post("/v2/repository/index", headers=AUTH).json()
        assert [entry.get("version") for entry in index] == ["2", None]  # at once, before any reload
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 409  # 2 refused again
        assert set(client.app.state.models.refused) == {("esmm", 2)}  # and 3 forgotten by the reload
        assert [(e.get("version"), e["state"]) for e in client.post("/v2/repository/index", headers=AUTH).json()] == [
            ("1", "READY"),
            ("2", "UNAVAILABLE"),
        ]
        shutil.rmtree(root / "esmm")  # served from memory still: listed (the index was []), and said (READY alone)
        gone = "its directory is gone from the repository: served from memory"
        assert client.post("/v2/repository/index", headers=AUTH).json() == [
            {"name": "esmm", "version": "1", "state": "READY", "reason": gone}
        ]
        reload = client.post("/v2/repository/models/esmm/load", headers=AUTH)
        assert reload.status_code == 400 and reload.json()["error"].startswith("model 'esmm' not reloaded: no versions")
        assert reload.json()["error"].endswith("(serving versions [1])")


def test_polling_retries_a_refused_version_once_its_files_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version copied file by file, not published by an atomic rename: polling finds it half there and
    refuses it, leaves it alone while its files stay as they are (no reload storm), and serves it once
    its model.onnx arrives. It was refused for good."""
    import logging
    import shutil

    def refusals() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("model esmm version 2 refused")]

    caplog.set_level(logging.INFO)
    staging = make_repository(tmp_path / "staging", 2)  # its version 2, to be copied by hand
    root = make_repository(tmp_path / "models", 1)
    with app_client(root, poll_interval_s=0.1) as client:
        copy = version_dir(root, "esmm", 2)
        copy.mkdir()
        shutil.copy2(version_dir(staging, "esmm", 2) / "model.json", copy / "model.json")
        eventually(
            lambda: any("model.onnx cannot be read" in line for line in refusals()), 10, "the half copy not refused"
        )
        observe_polls(client, 5)  # with the files as they were: not loaded again
        (refused,) = refusals()
        retried = "once its files change, or by an admin load"  # not a storage failure: no backoff said
        assert refused.endswith(f"(retried by polling {retried})"), refused
        shutil.copy2(version_dir(staging, "esmm", 2) / MODEL_FILE, copy / MODEL_FILE)
        eventually(lambda: client.get("/v2/models/esmm").json()["versions"] == ["2"], 10, "the whole copy not served")
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 2
        assert not client.app.state.models.refused


def test_a_served_version_rewritten_in_place_is_said_once_and_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another version's files copied over a served one (``cp other/* esmm/1/``): nothing was said, the
    process served what it had loaded while one started later served the new files, under one version. A
    chmod or a touch, which change the files' times alone, is no rewrite."""
    import logging
    import shutil

    from service.routes.admin import REWRITTEN

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "its files changed on disk" in r.getMessage()]

    caplog.set_level(logging.INFO)
    other = make_repository(tmp_path / "other", 1)
    publish_tiny_esmm(other, seed=9)  # version 2 of other weights
    root = make_repository(tmp_path / "models", 1)
    with app_client(root, poll_interval_s=0.1) as client:
        before = client.post("/v1/score", json=BODY).json()
        observe_polls(client, 3)
        assert not warnings()
        assert client.post("/v2/repository/index", headers=AUTH).json()[0]["reason"] == ""
        (version_dir(root, "esmm", 1) / MODEL_FILE).chmod(0o600)  # its change time moves, not its content
        (version_dir(root, "esmm", 1) / "model.json").touch()
        observe_polls(client, 3)
        assert not warnings()  # a chmod was said as a rewrite
        assert client.post("/v2/repository/index", headers=AUTH).json()[0]["reason"] == ""
        shutil.copy2(version_dir(other, "esmm", 2) / MODEL_FILE, version_dir(root, "esmm", 1) / MODEL_FILE)
        eventually(lambda: warnings(), 10, "the rewritten version not said")
        observe_polls(client, 5)  # the files as they are: said once
        (said,) = warnings()
        assert said.startswith("model esmm version 1: its files changed on disk since it was loaded"), said
        assert client.post("/v2/repository/index", headers=AUTH).json() == [
            {"name": "esmm", "version": "1", "state": "READY", "reason": REWRITTEN}
        ]
        assert client.post("/v1/score", json=BODY).json() == before  # it serves what was loaded


def test_a_load_with_nothing_loadable_keeps_the_old_version(tmp_path: Path) -> None:
    root = make_repository(tmp_path, 1, "max_batch_size = 16\nmax_queue_items = 64")
    with app_client(root) as client:
        publish_tiny_esmm(root, seed=2)
        (version_dir(root, "esmm", 2) / MODEL_FILE).write_bytes(b"\0" * 10)
        (version_dir(root, "esmm", 1) / MODEL_FILE).write_bytes(b"\0" * 10)  # served from memory still
        response = client.post("/v2/repository/models/esmm/load", headers=AUTH)
        assert response.status_code == 409 and "version 2 refused" in response.json()["error"]
        assert response.json()["error"].endswith("(serving versions [1])")  # v1 kept as served
        assert client.post("/v1/score", json=BODY).status_code == 200
        assert client.post("/v2/repository/models/other/load", headers=AUTH).status_code == 400


def test_polling_picks_up_a_new_version(tmp_path: Path) -> None:
    import time

    root = make_repository(tmp_path, 1)
    with app_client(root, poll_interval_s=0.1) as client:
        publish_tiny_esmm(root, seed=3)
        deadline = time.monotonic() + 10
        while client.get("/v2/models/esmm").json()["versions"] != ["2"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 2


def test_an_unexpected_error_in_a_poll_is_logged_and_polling_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error polling did not expect (a directory it may not list) ended the polling task without a
    word: no version was picked up again until a restart."""
    import time

    real = ModelManager._wanted_now
    unreadable = threading.Event()
    unreadable.set()

    def listed_in_error(self: ModelManager, name: str) -> object:
        if name == "esmm" and unreadable.is_set():
            raise PermissionError(13, "Permission denied", "models/esmm")
        return real(self, name)

    def poll_failing() -> bool:
        return 'ctr_model_poll_failing{model="esmm"} 1' in client.get("/metrics").text

    monkeypatch.setattr(ModelManager, "_wanted_now", listed_in_error)  # the file system's error, until mended
    root = make_repository(tmp_path, 1)
    with caplog.at_level("ERROR"), app_client(root, poll_interval_s=0.1) as client:
        eventually(poll_failing, 10, "the gauge an alert reads did not say the polling failed")
        unreadable.clear()
        publish_tiny_esmm(root, seed=3)
        deadline = time.monotonic() + 10
        while client.get("/v2/models/esmm").json()["versions"] != ["2"]:
            assert time.monotonic() < deadline, "polling stopped after the error"
            time.sleep(0.05)
        assert 'ctr_model_poll_failing{model="esmm"} 0' in client.get("/metrics").text  # failed once, then not
    assert "poll: model esmm: unexpected error; polling goes on" in caplog.text
    assert "Permission denied" in caplog.text


def test_polling_says_once_per_reason_that_a_broken_config_holds_back_new_versions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Polling skipped a model whose config.toml it could not read without a word, its new versions
    never loaded; now one warning per distinct reason, not one per poll, and a mended config loads them."""
    import logging

    def warnings() -> list[str]:
        return [
            r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "poll: model esmm" in r.message
        ]

    def failing() -> str:  # the gauge an alert reads: the warning is said once
        (line,) = [line for line in client.get("/metrics").text.splitlines() if line.startswith(FAILING)]
        return line.removeprefix(FAILING)

    FAILING = 'ctr_model_poll_failing{model="esmm"} '
    caplog.set_level(logging.INFO, logger="service.models.manager")
    root = make_repository(tmp_path, 1)
    config = root / "esmm" / "config.toml"
    with app_client(root, poll_interval_s=0.1) as client:
        assert failing() == "0"
        config.write_text('kind = "esmm"\n[serving\n')
        publish_tiny_esmm(root, seed=3)  # version 2, held back
        eventually(lambda: warnings(), 10, "no warning")
        observe_polls(client, 5)  # the same reason: no more lines
        (first,) = warnings()
        assert "poll: model esmm: serving settings: " in first and "is not valid TOML" in first
        assert first.endswith("no new version is loaded until it is mended")
        (served,) = client.post("/v2/repository/index", headers=AUTH).json()  # it was in the log alone
        assert served["version"] == "1" and served["state"] == "READY"
        assert served["reason"].startswith("newer versions are not loaded: serving settings: ")
        assert "is not valid TOML" in served["reason"]
        assert failing() == "1"
        config.write_text('kind = "esmm"\n[serving]\nmax_batch_sise = 64\n')
        eventually(lambda: len(warnings()) == 2, 10, "no warning for the new reason")
        assert "serving.max_batch_sise is not a setting" in warnings()[1]
        assert client.get("/v2/models/esmm").json()["versions"] == ["1"]
        config.write_text('kind = "esmm"\n[serving]\nmax_batch_size = 64\n')
        eventually(
            lambda: client.get("/v2/models/esmm").json()["versions"] == ["2"], 10, "version 2 not loaded once mended"
        )
        assert len(warnings()) == 2
        assert client.post("/v2/repository/index", headers=AUTH).json()[0]["reason"] == ""
        observe_polls(client, 1)
        assert failing() == "0"


def test_polling_says_once_that_the_served_versions_are_gone_from_the_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The repository moved away (a volume unmounted) while serving: polling found nothing to load and said
    nothing, ``ctr_model_poll_failing`` at 0, though a restart would serve nothing; now a warning for each new
    state and the gauge at 1, until the versions are back."""
    import logging
    import shutil

    def warnings() -> list[str]:
        return [
            r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "poll: model esmm" in r.message
        ]

    def failing() -> str:
        (line,) = [line for line in client.get("/metrics").text.splitlines() if line.startswith(FAILING)]
        return line.removeprefix(FAILING)

    FAILING = 'ctr_model_poll_failing{model="esmm"} '
    caplog.set_level(logging.INFO, logger="service.models.manager")
    root = make_repository(tmp_path / "models", 1)
    moved = tmp_path / "moved"
    with app_client(root, poll_interval_s=0.1) as client:
        observe_polls(client, 1)
        assert failing() == "0"
        root.rename(moved)
        eventually(lambda: warnings(), 10, "no warning")
        observe_polls(client, 5)  # the same state: no more lines
        (first,) = warnings()
        assert first == (
            f"poll: model esmm: the model repository {root} is gone: versions [1] are served from memory, "
            "and a restart would find none to serve"
        )
        assert failing() == "1"
        assert client.post("/v1/score", json=BODY).status_code == 200  # served all the same
        moved.rename(root)
        (root / "esmm" / "1").rename(moved)  # the model's folder back, its served version not
        eventually(lambda: len(warnings()) == 2, 10, "no warning for the new state")
        assert warnings()[1] == (
            f"poll: model esmm: version 1 gone from {root / 'esmm'}, and none there its policy selects: versions [1] "
            "are served from memory, and a restart would find none to serve"
        )
        moved.rename(root / "esmm" / "1")
        eventually(lambda: "poll: model esmm: versions on disk again" in caplog.text, 10, "not said to be back")
        observe_polls(client, 1)
        assert failing() == "0"
        assert len(warnings()) == 2
        publish_tiny_esmm(root, seed=3)
        shutil.rmtree(version_dir(root, "esmm", 1))  # gone, but version 2 is there to load: no warning
        eventually(lambda: client.get("/v2/models/esmm").json()["versions"] == ["2"], 10, "version 2 not loaded")
        observe_polls(client, 2)
        assert len(warnings()) == 2 and failing() == "0"


def test_polling_loads_again_until_every_worker_has_loaded(tmp_path: Path) -> None:
    """Worker 0 polls for all (service/models/manager.py); when another worker fails the load of what it
    found, worker 0 serves the new version already, so comparing the repository with its own versions
    would never load again and the workers would serve different versions. Worker 1 here is a
    ``SiblingAdmin`` on its socket whose first load fails (as one out of memory would); the next poll
    loads again, and once every worker has loaded, polling stops loading."""
    import time

    from service.sibling_admin import SiblingAdmin

    root = make_repository(tmp_path / "models", 1)
    loads: list[float] = []
    stop = threading.Event()
    listening = threading.Event()

    async def worker_1() -> None:
        async def operate(op: str, name: str) -> tuple[int, dict]:
            loads.append(time.monotonic())
            if len(loads) == 1:
                return 500, {"error": "model 'esmm': out of memory"}
            return 200, {"name": name, "versions": [2]}

        admin = SiblingAdmin(tmp_path, 1, 2)
        await admin.listen(operate)
        listening.set()
        while not stop.is_set():
            await asyncio.sleep(0.01)
        admin.close()

    thread = threading.Thread(target=asyncio.run, args=(worker_1(),))
    thread.start()
    try:
        assert listening.wait(10)
        app = create_app(Settings(model_repository=root, ctr_model="esmm", use_cuda=False, poll_interval_s=0.1))
        app.state.sibling_admin = SiblingAdmin(tmp_path, 0, 2)
        with TestClient(app) as client:
            publish_tiny_esmm(root, seed=3)
            deadline = time.monotonic() + 10
            while len(loads) < 2:
                assert time.monotonic() < deadline, f"worker 1 asked {len(loads)} time(s)"
                time.sleep(0.05)
            assert client.get("/v2/models/esmm").json()["versions"] == ["2"]
            time.sleep(0.5)  # five more polls: every worker serves what the repository holds
            assert len(loads) == 2
    finally:
        stop.set()
        thread.join(10)


def test_reloads_free_the_old_versions_threads_and_sessions(tmp_path: Path) -> None:
    """Memory must not grow with reloads: each replaced version's batcher, thread pool and ONNX Runtime
    session go when its last request is answered, also after the server's gc.freeze() at start-up."""
    import gc
    import threading
    import weakref

    root = make_repository(tmp_path, 1)
    threshold = gc.get_threshold()
    app = create_app(Settings(model_repository=root, ctr_model="esmm", use_cuda=False, admin_token=TOKEN), tune_gc=True)
    try:
        with TestClient(app) as client:
            assert client.post("/v1/score", json=BODY).status_code == 200
            first = weakref.ref(next(iter(app.state.models.batchers.values())))
            threads = threading.active_count()
            for seed in range(10, 22):
                publish_tiny_esmm(root, seed=seed)
                assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 200
                assert client.post("/v1/score", json=BODY).status_code == 200
            client.get("/v2/health/live")  # let the retired batchers finish draining
            gc.collect()
            assert first() is None
            assert threading.active_count() <= threads + 2
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_the_poller_of_several_workers_loads_each_model_in_all_of_them_once(tmp_path: Path) -> None:
    """Each worker reads the repository at its own start: a version published meanwhile split them for good,
    since the poller compared the disk with its own versions only. Its first poll of each model now loads it
    in every worker (here: the load it is given), and only that once while nothing changes."""
    settings = Settings(
        model_repository=make_repository(tmp_path, 1), ctr_model="esmm", use_cuda=False, poll_interval_s=0.1
    )

    async def polled(polls: bool) -> list[str]:
        manager = bare_manager(settings)
        everywhere: list[str] = []

        async def load_everywhere(name: str) -> None:
            everywhere.append(name)
            await manager.load(name)

        manager.poll_for_all(polls, load_everywhere)
        await manager.start()
        await asyncio.sleep(0.6)  # six polls
        await manager.stop(1.0)
        return everywhere

    assert asyncio.run(polled(True)) == ["esmm"]  # the roles' model; esam has no version to load
    assert asyncio.run(polled(False)) == []  # a worker that does not poll


def test_a_reloaded_model_starts_from_the_service_rate_it_takes_over(tmp_path: Path) -> None:
    """A new batcher measured its rate from its own first runs, small batches whose fixed cost put it at
    1-3% of the steady rate: a 1-candidate request behind a 1,000-candidate one was refused as overloaded
    after every reload (15 spurious 503s in 12 s with 10 reloads, an audit found)."""
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        big = {"candidates": BODY["candidates"] * 40}
        for _ in range(5):
            assert client.post("/v1/score", json=big).status_code == 200
        models = client.app.state.models  # type: ignore[attr-defined]
        before = models.batchers[models.loaded["esmm"]].rate
        assert before.seconds > 0
        publish_tiny_esmm(root, seed=5)
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).json()["versions"] == [2]
        models = client.app.state.models  # type: ignore[attr-defined]
        after = models.batchers[models.loaded["esmm"]].rate
        assert after is not before and (after.items, after.seconds) == (before.items, before.seconds)


def test_a_fresh_start_s_batcher_starts_from_the_rate_of_its_largest_warm_up_run(tmp_path: Path) -> None:
    """With no version to take a rate over from, a batcher measured it from its first run: after a start, a
    single item on paths not yet warm, which put the rate at ~1/50 of the steady one, and a fresh replica
    refused 2-5 of the first 24 requests of a burst (12 of 1,000 candidates) it then ran in 130 ms as
    overloaded (an autoscaling audit's runs). The warm-up's largest run now gives the first estimate."""
    root = make_repository(tmp_path, 1)
    with app_client(root, warmup_batch_sizes="1,64") as client:
        models = client.app.state.models  # type: ignore[attr-defined]
        rate = models.batchers[models.loaded["esmm"]].rate
        assert rate.items == 64 and rate.seconds > 0
        assert rate is not models.loaded["esmm"].warm_up_rate  # the batcher's own, the model's stays as measured
        assert client.post("/v1/score", json=BODY).status_code == 200  # the first request moves it, as any run
        config = models.batchers[models.loaded["esmm"]].config
        now = 0.0
        # 12 requests of 1,000 candidates queued, a 1-candidate one behind them, 1 s left: admitted
        wait = rate.expected_wait(12_000 + 1, config.instances)
        assert wait is not None and wait < 1.0
        assert admission(12_000, 1, now, now + 1.0, config, rate) is None


def test_requests_of_a_draining_batcher_stay_in_the_pending_gauge(tmp_path: Path) -> None:
    """A reload swaps the snapshot, then drains the old batchers: their requests, still being answered, fell
    out of ctr_inference_pending_request_count (14 in flight read 1 just after a reload)."""
    settings = Settings(model_repository=make_repository(tmp_path, 1), ctr_model="esmm", use_cuda=False)
    release = threading.Event()

    async def gauge() -> tuple[int, int, int]:
        manager = bare_manager(settings)
        await manager.start()
        model = manager.models.loaded["esmm"]
        batcher = gated_batcher(release)
        works = three_requests(batcher)
        await asyncio.sleep(0.05)
        manager._retire([(model, batcher)])  # as a reload retires the batcher it replaced
        draining = manager.pending()[("esmm", 1)]
        release.set()
        await asyncio.gather(*(w.future for w in works))
        await asyncio.sleep(0.05)
        drained = manager.pending()[("esmm", 1)]
        await manager.stop(1.0)
        return draining, drained, len(manager._draining)

    draining, drained, left = asyncio.run(gauge())
    assert draining == 3 and drained == 0 and left == 0  # the served batcher's 0, plus the draining one's


def test_a_poll_that_lands_after_an_unload_leaves_the_model_unloaded(tmp_path: Path) -> None:
    """The hold was checked when a poll listed the models: an unload landing while the poll read the disk
    (or, with several workers, while it waited its turn) was undone by that poll's load, which also ended
    the hold. A load polling decided on now skips a held model; the operator's load ends the hold."""
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        manager = client.app.state.manager  # type: ignore[attr-defined]
        assert client.post("/v2/repository/models/esmm/unload", headers=AUTH).status_code == 200
        result = client.portal.call(manager.poll_load, "esmm")  # type: ignore[union-attr]
        assert result.served == [] and "esmm" not in client.app.state.models.loaded  # type: ignore[attr-defined]
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).json()["versions"] == [1]
        assert client.portal.call(manager.poll_load, "esmm").served == [1]  # type: ignore[union-attr]


def test_the_pending_gauge_counts_each_request_once_while_stop_drains(tmp_path: Path) -> None:
    """stop() retires the batchers the snapshot still serves: counted from both, every request counted twice."""
    from dataclasses import replace

    settings = Settings(model_repository=make_repository(tmp_path, 1), ctr_model="esmm", use_cuda=False)
    release = threading.Event()

    async def during_stop() -> int:
        manager = bare_manager(settings)
        await manager.start()
        model = manager.models.loaded["esmm"]
        slow = gated_batcher(release)
        old = manager.models.batchers[model]
        manager._swap(replace(manager.models, batchers={model: slow}))
        await old.retire(1.0)
        works = three_requests(slow)
        stopping = asyncio.create_task(manager.stop(5.0))
        await asyncio.sleep(0.05)
        counted = manager.pending()[("esmm", 1)]
        release.set()
        await asyncio.gather(*(w.future for w in works))
        await stopping
        return counted

    assert asyncio.run(during_stop()) == 3
