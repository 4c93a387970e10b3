"""The ctr and ctcvr role models must serve the same position regime (model.json ``position``) and agree
on the kind of every feature either requires: a mismatch stops the start-up with a message naming both
models, and a reload that would create one is refused while the old version keeps serving. A model that
cannot fill a scoring role (a retrieval model) is named as the reason the service is not ready."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clients.service_process import free_port
from common.features import Feature, FeatureSpec, NumericStats
from common.roles import ROLES, Role
from service.app import create_app
from service.models import snapshot
from service.models.loader import load_newest
from service.models.manager import load_snapshot
from service.models.snapshot import RoleConflict
from service.routes.models import ModelList
from service.settings import Settings
from tests.support.checkout import ROOT
from tests.support.direct_scores import GOOD
from tests.support.retrieval import add_tiny_esam
from tests.support.tiny_model import SPEC, publish_tiny_esmm
from tests.support.wait import eventually, observe_polls

SLOT1 = {"regime": "slot1", "ctr_ratios": [1.0, 0.5, 0.33]}
LOGGED = {"regime": "logged"}
TOKEN = "a-long-enough-admin-token"


def settings_for(root: Path, **overrides: object) -> Settings:
    return Settings(model_repository=root, ctr_model="ctr", ctcvr_model="esmm", use_cuda=False, **overrides)


def regime_refusals(caplog: pytest.LogCaptureFixture) -> int:
    """How many times esmm was refused for its position regime, as the model manager logged it."""
    return sum(r.getMessage().startswith("model esmm not served: position regimes") for r in caplog.records)


def test_mismatched_regimes_are_refused_at_start_up_naming_both_models(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="esmm", position=LOGGED)
    with pytest.raises(RoleConflict) as refused, TestClient(create_app(settings_for(tmp_path))):
        pass
    message = str(refused.value)
    assert "'ctr'" in message and "'slot1'" in message and "'esmm'" in message and "'logged'" in message
    with pytest.raises(RoleConflict, match="ctr model 'ctr' version 1 serves 'slot1'"):
        load_snapshot(settings_for(tmp_path))


def test_matching_regimes_serve_and_models_list_the_position(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="esmm", position={**SLOT1, "ctr_ratios": [1.0, 0.6]})
    with TestClient(create_app(settings_for(tmp_path))) as client:
        assert client.post("/v1/score", json=GOOD).status_code == 200
        answer = client.get("/v1/models")
    listed = {m["name"]: m["position"] for m in answer.json()["models"]}
    assert listed == {"ctr": SLOT1, "esmm": {**SLOT1, "ctr_ratios": [1.0, 0.6]}}
    typed = {m.name: m.position for m in ModelList.model_validate_json(answer.content).models}  # as documented
    assert typed["esmm"].regime == "slot1" and typed["esmm"].ctr_ratios == [1.0, 0.6]


def test_a_reload_into_another_regime_is_refused_and_the_old_version_serves(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="esmm", position=SLOT1)
    with TestClient(create_app(settings_for(tmp_path, admin_token=TOKEN))) as client:
        publish_tiny_esmm(tmp_path, name="esmm", position=LOGGED, seed=3)  # version 2, position-blind
        response = client.post("/v2/repository/models/esmm/load", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code >= 400 and "regime" in response.text
        body = client.post("/v1/score", json=GOOD).json()
        # refused as a failed check is: listed by the index with its reason, counted
        index = client.post("/v2/repository/index", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        (entry,) = [e for e in index if e["name"] == "esmm" and e.get("version") == "2"]
        assert entry["state"] == "UNAVAILABLE" and "regime" in entry["reason"]
        assert 'ctr_model_version_refusals_total{model="esmm"} 1' in client.get("/metrics").text
    assert body["models"]["ctcvr"] == {"name": "esmm", "version": 1}


def test_polling_loads_a_version_that_conflicts_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """It was loaded and warmed up again at every poll (18 loads in 4 s at a 0.2 s interval), never listed as
    refused; now once, until its files change."""
    caplog.set_level(logging.INFO, logger="service.models.manager")
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="esmm", position=SLOT1)
    with TestClient(create_app(settings_for(tmp_path, poll_interval_s=0.1))) as client:
        publish_tiny_esmm(tmp_path, name="esmm", position=LOGGED, seed=3)  # version 2, position-blind
        eventually(lambda: regime_refusals(caplog), 10, "version 2 refused for its regime")
        observe_polls(client, 5)  # each would have refused it again
        assert client.post("/v1/score", json=GOOD).json()["models"]["ctcvr"] == {"name": "esmm", "version": 1}
    assert regime_refusals(caplog) == 1, [r.getMessage() for r in caplog.records]


def test_the_served_process_refuses_them_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    """uvicorn printed the refusal's 45-line traceback after the model manager's line that said it."""
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="esmm", position=LOGGED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CTR_PORT": str(free_port()), "CTR_MODEL_REPOSITORY": str(tmp_path)}
    env |= {"CTR_CTR_MODEL": "ctr", "CTR_CTCVR_MODEL": "esmm", "CTR_USE_CUDA": "false"}
    done = subprocess.run([sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stderr.count("position regimes differ") == 1, done.stderr
    assert "Traceback" not in done.stderr and "Application startup failed" in done.stderr


def test_a_required_feature_of_two_kinds_is_refused_at_start_up(tmp_path: Path) -> None:
    """``hour`` categorical for one role model and a required numeric for the other: only null suits both,
    and a required feature cannot be null, so the service said it was ready and refused every request."""
    numeric_hour = FeatureSpec(
        tuple(Feature("hour", "numeric", "context") if f.name == "hour" else f for f in SPEC.features),
        {**SPEC.stats, "hour": NumericStats(12.0, 6.0)},
    )
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), spec=numeric_hour)
    publish_tiny_esmm(tmp_path, name="esmm")
    with pytest.raises(RoleConflict, match="feature 'hour' is numeric for ctr model 'ctr' version 1 and categorical"):
        load_snapshot(settings_for(tmp_path))


def test_every_role_of_the_table_is_checked_not_the_first_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """common/roles.py: adding a role is a row of its table; the check compared only the ctr and ctcvr
    models, so a third role's model of another regime was combined without a word (DESIGN.md §1)."""
    publish_tiny_esmm(tmp_path, name="esmm", position=SLOT1)
    publish_tiny_esmm(tmp_path, name="blind", position=LOGGED)
    monkeypatch.setattr(snapshot, "ROLES", (*ROLES, Role("cvr", ("pcvr",), "cvr_model", "esmm")))
    loaded = {name: load_newest(settings_for(tmp_path), name) for name in ("esmm", "blind")}
    models = snapshot.ServingModels({"ctr": "esmm", "ctcvr": "esmm", "cvr": "blind"}, loaded, {})
    assert models.role_conflict() == (
        "position regimes differ: ctr model 'esmm' version 1 serves 'slot1', cvr model 'blind' version 1 serves "
        "'logged'; pctr, pctcvr and pcvr must hold for the same slot (model.json position.regime): serve one "
        "model in every role (CTR_CTR_MODEL and CTR_CTCVR_MODEL and CTR_CVR_MODEL the same), pair position-blind "
        "models (kind esmm, or a version exported before position regimes existed) with each other, or train "
        "the position-blind one as a slot-1 kind (esmm_debiased)"
    )


def test_a_retrieval_model_named_for_a_scoring_role_is_the_reason_given(tmp_path: Path) -> None:
    add_tiny_esam(tmp_path)
    settings = Settings(model_repository=tmp_path, ctr_model="esam", ctcvr_model="esam", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/v2/health/ready")
        scored = client.post("/v1/score", json=GOOD)
    reason = "of kind 'esam', which answers /v1/similarity, it cannot fill the role(s) ['ctr', 'ctcvr']"
    assert ready.status_code == 503 and ready.json()["unavailable"] == {"esam": reason}  # it was {}
    assert scored.status_code == 503 and reason in scored.json()["error"]


def test_a_conflict_and_a_failed_check_in_one_load_are_both_refused_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A load that refused version 3 for its checksum and version 2 for a conflict recorded the conflict
    alone: polling found 3 unrefused, loaded again, and so every poll (14 loads of version 2 in 1.5 s)."""
    from common.repository import MODEL_FILE, version_dir

    caplog.set_level(logging.INFO, logger="service.models.manager")

    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="esmm", position=SLOT1)
    with TestClient(create_app(settings_for(tmp_path, poll_interval_s=0.1, admin_token=TOKEN))) as client:
        publish_tiny_esmm(tmp_path, name="esmm", position=LOGGED, seed=3)  # version 2: conflicts
        damaged = version_dir(tmp_path, "esmm", publish_tiny_esmm(tmp_path, name="esmm", position=SLOT1, seed=4))
        (damaged / MODEL_FILE).write_bytes((damaged / MODEL_FILE).read_bytes()[:-1] + b"\0")  # version 3
        eventually(lambda: regime_refusals(caplog), 10, "version 2 refused for its regime")
        observe_polls(client, 5)  # each would have loaded both again, counting two more refusals
        index = client.post("/v2/repository/index", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        refused = {e["version"]: e["reason"] for e in index if e["name"] == "esmm" and e["state"] == "UNAVAILABLE"}
        assert set(refused) == {"2", "3"} and "regime" in refused["2"] and "sha256" in refused["3"], index
        assert 'ctr_model_version_refusals_total{model="esmm"} 2' in client.get("/metrics").text


def test_a_conflict_refusal_stands_while_only_a_model_outside_the_roles_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It depended on every other model served: each new version of the retrieval model loaded and warmed
    up the conflicting version again (and counted another refusal)."""
    import time

    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="esmm", position=SLOT1)
    publish_tiny_esmm(tmp_path, name="other", position=SLOT1)
    with TestClient(create_app(settings_for(tmp_path, poll_interval_s=0.1, retrieval_model="other"))) as client:
        publish_tiny_esmm(tmp_path, name="esmm", position=LOGGED, seed=3)  # version 2: conflicts
        time.sleep(0.5)
        for seed in (4, 5):  # the model outside the roles moves on
            publish_tiny_esmm(tmp_path, name="other", position=SLOT1, seed=seed)
            time.sleep(0.5)
        assert client.app.state.models.loaded["other"].version == 3  # type: ignore[attr-defined]
        assert 'ctr_model_version_refusals_total{model="esmm"} 1' in client.get("/metrics").text
    refusals = [r for r in caplog.records if r.getMessage().startswith("model esmm not served: position regimes")]
    assert len(refusals) == 1


def test_a_version_refused_for_a_conflict_is_served_once_the_other_role_model_changes(tmp_path: Path) -> None:
    """Its refusal was kept while its own files stayed as they were: once the ctr model moved to a version
    it could serve beside, polling never tried it again (an admin load served it at once)."""
    import time

    numeric_hour = FeatureSpec(
        tuple(Feature("hour", "numeric", "context") if f.name == "hour" else f for f in SPEC.features),
        {**SPEC.stats, "hour": NumericStats(12.0, 6.0)},
    )
    without_hour = FeatureSpec(
        tuple(f for f in SPEC.features if f.name != "hour"), {k: v for k, v in SPEC.stats.items() if k != "hour"}
    )
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",))
    publish_tiny_esmm(tmp_path, name="esmm")
    with TestClient(create_app(settings_for(tmp_path, poll_interval_s=0.1))) as client:

        def served() -> dict[str, int]:
            models = client.app.state.models  # type: ignore[attr-defined]
            return {name: model.version for name, model in models.loaded.items()}

        publish_tiny_esmm(tmp_path, name="esmm", spec=numeric_hour, seed=3)  # version 2: hour of another kind
        time.sleep(0.5)
        assert served() == {"ctr": 1, "esmm": 1} and ("esmm", 2) in client.app.state.models.refused  # type: ignore[attr-defined]
        publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), spec=without_hour, seed=3)  # takes no hour
        deadline = time.monotonic() + 10
        while served() != {"ctr": 2, "esmm": 2}:
            assert time.monotonic() < deadline, served()
            time.sleep(0.05)


def test_a_position_without_its_regime_is_listed_with_the_one_it_is_served_in(tmp_path: Path) -> None:
    """model.json may leave the regime out (read as "logged"); the listing passed it on as it was, which the
    documented schema (regime required) refused, and a generated client with it."""
    publish_tiny_esmm(tmp_path, name="esmm", position={"ctr_ratios": [1.0, 0.6]})
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/models")
    (listed,) = ModelList.model_validate_json(answer.content).models
    assert listed.position is not None and listed.position.regime == "logged"
