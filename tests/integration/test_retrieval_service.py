"""A retrieval service under real uvicorn: ``CTR_CTR_MODEL=none CTR_CTCVR_MODEL=none`` over a repository holding
an ESAM alone. It starts without an admin token and without an ERROR line, is ready once its retrieval model is
loaded (503 naming it before), answers /v1/similarity, refuses /v1/score 404 saying why, lists the ESAM alone in
/v1/models; polling and the admin API load and unload it as any model; and the starts it refuses."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from clients.service_process import free_port
from tests.support.ctr_process import ctr, one_error_line
from tests.support.retrieval import add_tiny_esam
from tests.support.server import running_server

QUERY = {"user_id": "u5", "user_segment": "s2", "device": "desktop", "query_category": "c1"}
NO_ROLES = {"ctr_model": "none", "ctcvr_model": "none"}
NO_ROLE_VARIABLES = {f"CTR_{key.upper()}": value for key, value in NO_ROLES.items()}
TOKEN = "t" * 16
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_retrieval_service_is_ready_answers_similarity_and_refuses_scores(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    add_tiny_esam(repository)
    log = tmp_path / "server.log"
    with running_server(repository, log, **NO_ROLES) as (url, _), httpx.Client(base_url=url, timeout=10.0) as http:
        assert http.get("/v2/health/ready").json() == {"ready": True}  # running_server waited for its 200
        top = http.post("/v1/similarity", json={"query": QUERY, "k": 3})
        assert top.status_code == 200, top.text
        assert len(top.json()["items"]) == 3 and top.json()["model"] == {"name": "esam", "version": 1}
        score = http.post("/v1/score", json={"candidates": [{"ad_id": "a1"}]})
        assert score.status_code == 404 and score.headers["content-type"] == "application/json"
        assert score.json() == {
            "error": "/v1/score is not served here: CTR_CTR_MODEL and CTR_CTCVR_MODEL are none, so this service "
            "fills no scoring role and serves its retrieval model 'esam' alone (/v1/similarity); send scoring "
            "requests to a service with role models",
            "field": None,
        }
        infer = http.post("/v2/models/esmm/infer", json={"inputs": []})
        assert infer.status_code == 404 and infer.json()["error"] == "model 'esmm' is not served"
        listed = http.get("/v1/models").json()["models"]
        assert [(m["name"], m["roles"], m["ready"], m["versions"]) for m in listed] == [
            ("esam", ["retrieval"], True, [1])
        ]
    text = log.read_text()
    assert "ready: retrieval model esam alone" in text
    assert " ERROR " not in text and " WARNING " not in text, text


def wait_for(http: httpx.Client, status: int) -> httpx.Response:
    deadline = time.monotonic() + 30
    while (response := http.get("/v2/health/ready")).status_code != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return response


def test_polling_and_the_admin_api_load_and_unload_the_retrieval_model(tmp_path: Path) -> None:
    """Not ready, naming the ESAM, until polling finds it published; ready again once an admin unload and load
    have gone through."""
    repository, staging = tmp_path / "models", tmp_path / "staging"
    repository.mkdir()
    settings = {**NO_ROLES, "admin_token": TOKEN, "poll_interval_s": "0.2"}
    with (
        running_server(repository, tmp_path / "server.log", ready=False, **settings) as (url, _),
        httpx.Client(base_url=url, timeout=10.0) as http,
    ):
        deadline = time.monotonic() + 30
        while True:  # listening once the start has found nothing to load
            try:
                before = http.get("/v2/health/ready")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the service did not listen"
                time.sleep(0.1)
        assert before.status_code == 503
        assert before.json()["unavailable"] == {"esam": "no versions of model 'esam' in the model repository"}
        assert http.post("/v1/similarity", json={"query": QUERY, "k": 3}).status_code == 503
        add_tiny_esam(staging)
        (staging / "esam").rename(repository / "esam")  # published whole, as an export publishes a version
        assert wait_for(http, 200).json() == {"ready": True}
        unloaded = http.post("/v2/repository/models/esam/unload", headers=AUTH)
        assert unloaded.status_code == 200, unloaded.text
        assert wait_for(http, 503).json()["unavailable"]["esam"]
        loaded = http.post("/v2/repository/models/esam/load", headers=AUTH)
        assert loaded.status_code == 200, loaded.text
        assert http.get("/v2/health/ready").status_code == 200
        assert http.post("/v1/similarity", json={"query": QUERY, "k": 3}).status_code == 200


def test_one_role_none_alone_is_refused_at_start(tmp_path: Path) -> None:
    done = ctr("serve", "--repository", str(tmp_path), cwd=tmp_path, CTR_CTCVR_MODEL="none")
    assert one_error_line(done) == (
        "error: invalid settings: CTR_CTCVR_MODEL none alone: a score needs every role (pcvr = pctcvr / pctr); "
        "name a model in each, or none in each (CTR_CTR_MODEL=none CTR_CTCVR_MODEL=none) for a service of the "
        "retrieval model alone"
    )


def test_no_roles_and_no_retrieval_model_is_refused_at_start(tmp_path: Path) -> None:
    """Nothing to serve, and nothing (no polling, no admin API) would load the retrieval model later."""
    done = ctr("serve", "--repository", str(tmp_path), "--port", str(free_port()), cwd=tmp_path, **NO_ROLE_VARIABLES)
    assert done.returncode == 3, done.stderr
    assert (
        "ERROR service.models.manager: not starting: retrieval model esam not served (the service fills no role: "
        "it would serve nothing), and nothing would load them later"
    ) in done.stderr
