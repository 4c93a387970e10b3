"""POST /v1/similarity under real uvicorn: a served ESAM, and a service without one (503, still ready)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.retrieval import add_tiny_esam
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm

QUERY = {"user_id": "u5", "user_segment": "s2", "device": "desktop", "query_category": "c1"}


def test_similarity_over_http(tmp_path_factory: pytest.TempPathFactory) -> None:
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository)
    add_tiny_esam(repository)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(repository, log, ctr_model="esmm", max_top_k="20") as (url, _):
        top = httpx.post(f"{url}/v1/similarity", json={"query": QUERY, "k": 7}, timeout=10.0)
        assert top.status_code == 200, top.text
        items = top.json()["items"]
        assert len(items) == 7 and [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
        item = {"ad_id": items[0]["id"], "ad_category": "c1", "advertiser_id": "adv2", "ad_price": 9.5}
        listed = httpx.post(f"{url}/v1/similarity", json={"query": QUERY, "items": [item, item]}, timeout=10.0)
        assert listed.status_code == 200
        scores = listed.json()["scores"]
        assert len(scores) == 2 and scores[0] == scores[1] and 0.0 < scores[0] < 1.0
        too_many = httpx.post(f"{url}/v1/similarity", json={"query": QUERY, "k": 21}, timeout=10.0)
        assert too_many.status_code == 422 and too_many.json()["field"] == "k"
    assert "model esam version 1 loaded (kind esam" in log.read_text()


def test_without_retrieval_model_the_service_is_ready_and_similarity_is_503(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(repository, log, ctr_model="esmm") as (
        url,
        _,
    ):  # running_server waits for /v2/health/ready = 200
        response = httpx.post(f"{url}/v1/similarity", json={"query": QUERY, "k": 3}, timeout=10.0)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert "no retrieval model" in response.json()["error"]
