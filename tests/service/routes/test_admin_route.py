"""The model repository routes (Triton-style) with a token: the OpenAPI document's account of them (the
bearer scheme, the bodies, the errors) against what they answer, and the index's ``ready`` filter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from service.app import create_app
from service.routes import admin
from service.settings import Settings
from tests.support.tiny_model import publish_tiny_esmm

TOKEN = "admin-route-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    (root / "ghost").mkdir()  # a model directory with no version: an UNAVAILABLE entry
    (root / "lost+found").mkdir()  # no model's name (an ext4 volume's root has it): left out, was a 500
    (root / ".cache").mkdir()
    settings = Settings(model_repository=root, ctr_model="esmm", use_cuda=False, admin_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client


def documented_200(path: str) -> TypeAdapter:
    route = next(r for r in admin.router.routes if isinstance(r, APIRoute) and r.path == path)
    return TypeAdapter(route.responses[200]["model"])


def test_the_bearer_scheme_is_declared_on_the_admin_routes_alone(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["AdminToken"] | {"description": None} == {
        "type": "http",
        "scheme": "bearer",
        "description": None,
    }
    for path, operations in document["paths"].items():
        for operation in operations.values():
            secured = operation.get("security") == [{"AdminToken": []}]
            assert secured == path.startswith("/v2/repository/"), path
            if secured:  # what the scheme promises: no token or a wrong one is a 401 asking for Bearer
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
                    response = client.post(path.replace("{name}", "esmm"), headers=headers)
                    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_load_and_unload_answer_their_documented_bodies(client: TestClient) -> None:
    loaded = client.post("/v2/repository/models/esmm/load", headers=AUTH)
    assert loaded.status_code == 200 and loaded.json() == {"name": "esmm", "versions": [1]}
    documented_200("/v2/repository/models/{name}/load").validate_json(loaded.content)
    unloaded = client.post("/v2/repository/models/esmm/unload", headers=AUTH)
    assert unloaded.status_code == 200 and unloaded.json() == {"name": "esmm", "unloaded": True}
    documented_200("/v2/repository/models/{name}/unload").validate_json(unloaded.content)
    assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 200


def test_each_documented_400_is_answered(client: TestClient) -> None:
    """Each admin route's 400 is in the document, with its own meaning (unload's was missing)."""
    operations = client.get("/openapi.json").json()["paths"]
    for path in ("/v2/repository/models/{name}/load", "/v2/repository/models/{name}/unload"):
        assert "model name" in operations[path]["post"]["responses"]["400"]["description"]
        response = client.post(path.replace("{name}", "-bad"), headers=AUTH)
        assert response.status_code == 400 and response.json()["field"] == "name", response.text
    assert "'ready'" in operations["/v2/repository/index"]["post"]["responses"]["400"]["description"]


def test_the_index_lists_the_ready_models_alone_when_asked(client: TestClient) -> None:
    everything = client.post("/v2/repository/index", headers=AUTH).json()
    assert {(e["name"], e["state"]) for e in everything} == {("esmm", "READY"), ("ghost", "UNAVAILABLE")}
    for body in (b"", b"{}", b'{"ready": false}', b'{"ready": false, "repository_name": ""}'):
        assert client.post("/v2/repository/index", headers=AUTH, content=body).json() == everything
    ready = client.post("/v2/repository/index", headers=AUTH, json={"ready": True})
    assert ready.status_code == 200 and ready.json() == [e for e in everything if e["state"] == "READY"]
    documented_200("/v2/repository/index").validate_json(ready.content)
    for bad in (b'{"ready": "yes"}', b"[true]", b'{"ready": 1}', b"{ready}"):
        response = client.post("/v2/repository/index", headers=AUTH, content=bad)
        assert response.status_code == 400 and "error" in response.json(), bad
    assert client.post("/v2/repository/index", headers=AUTH, json={"ready": 1}).json()["field"] == "ready"
