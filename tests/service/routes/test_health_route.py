from __future__ import annotations

from fastapi.testclient import TestClient


def test_live(client: TestClient) -> None:
    response = client.get("/v2/health/live")
    assert response.status_code == 200
    assert response.json() == {"live": True}


def test_ready_when_every_role_model_is_loaded(client: TestClient) -> None:
    response = client.get("/v2/health/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True}
