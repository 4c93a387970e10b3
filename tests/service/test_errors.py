from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.http.errors import InputError, UnexpectedErrors, field_path, install_error_handlers


@pytest.mark.parametrize(
    ("location", "path"),
    [
        (("body", "candidates", 0, "ad_id"), "candidates[0].ad_id"),
        (("body", "context", "user_id"), "context.user_id"),
        (("query", "limit"), "limit"),
        (("body",), None),
        ((), None),
    ],
)
def test_field_path(location: tuple, path: str | None) -> None:
    assert field_path(location) == path


def error_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(UnexpectedErrors)

    @app.get("/items")
    async def items(limit: int) -> dict:
        return {"limit": limit}

    @app.get("/input")
    async def bad_input() -> dict:
        raise InputError(422, "ad_price must be a number", "candidates[2].ad_price")

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("a bug")

    return app


def test_api_errors_name_the_field() -> None:
    with TestClient(error_app()) as client:
        response = client.get("/input")
    assert response.status_code == 422
    assert response.json() == {"error": "ad_price must be a number", "field": "candidates[2].ad_price"}


def test_fastapi_validation_errors_take_the_same_shape() -> None:
    with TestClient(error_app()) as client:
        response = client.get("/items", params={"limit": "many"})
    assert response.status_code == 422
    assert response.json()["field"] == "limit"
    assert response.json()["error"]


def test_unexpected_errors_answer_500_json(caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(error_app(), raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "field": None}
    assert any("unhandled error" in record.getMessage() for record in caplog.records)
