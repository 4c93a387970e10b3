from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def test_live(client: TestClient) -> None:
    response = client.get("/v2/health/live")
    assert response.status_code == 200
    assert response.json() == {"live": True}


def test_ready_when_every_role_model_is_loaded(client: TestClient) -> None:
    response = client.get("/v2/health/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True}


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_head_answers_as_get(client: TestClient, path: str) -> None:
    """Load balancers probe with HEAD: the same status and headers as GET (uvicorn drops the body)."""
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"


def test_every_get_route_answers_head(client: TestClient) -> None:
    """RFC 9110 section 9.1: a general-purpose server MUST support HEAD; FastAPI's routes answered it 405 on
    every GET route but the health probes'. The document lists no ``head`` operation beside each ``get``."""
    document = client.get("/openapi.json").json()
    paths = [path for path, operations in document["paths"].items() if "get" in operations and "{" not in path]
    assert "/v1/models" in paths and "/metrics" in paths
    assert not any("head" in operations for operations in document["paths"].values())
    for path in [*paths, "/v2/models/esmm", "/v2/models/esmm/versions/1/ready", "/v2/models/esmm/config"]:
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.headers["content-type"] == get.headers["content-type"] and head.content == b"", path
    assert client.head("/v2/models/nope").status_code == 404  # a GET's refusal, without its body
