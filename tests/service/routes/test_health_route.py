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
