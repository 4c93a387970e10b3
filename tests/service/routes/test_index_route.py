"""``GET /``: a browser opened at the base URL learns where to go (it was a bare 404, ``{"error": "Not Found"}``)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.settings import Settings


def test_the_base_url_names_the_docs_health_and_every_route(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    index = response.json()
    assert index["name"] == "debiased-ctr" and index["version"]
    assert (index["docs"], index["openapi"]) == ("/docs", "/openapi.json")
    assert index["health"] == {"live": "/v2/health/live", "ready": "/v2/health/ready"}
    for route in ("POST /v1/score", "POST /v1/similarity", "GET /v1/models", "GET /v2", "GET /metrics"):
        assert route in index["routes"]
    assert not any("/v2/repository" in route for route in index["routes"])  # the admin routes are off here
    for line in index["routes"]:  # each one served: its path answers something other than "no route"
        method, path = line.split(" ", 1)
        if "{" not in path:
            assert client.request(method, path, json={}).status_code != 404, line
    assert client.head("/").status_code == 200


def test_the_index_lists_what_this_app_mounts_under_its_prefix(settings: Settings) -> None:
    with_admin = settings.model_copy(update={"admin_token": SecretStr("t" * 32)})
    with TestClient(create_app(with_admin), root_path="/scoring") as client:
        index = client.get("/scoring/").json()
    assert "POST /scoring/v2/repository/index" in index["routes"] and "POST /scoring/v1/score" in index["routes"]
    assert index["docs"] == "/scoring/docs" and index["health"]["ready"] == "/scoring/v2/health/ready"
