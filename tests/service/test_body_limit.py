from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from service.http.body import BodySizeLimitMiddleware


def echo_app(limit: int) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=limit)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"length": len(await request.body())}

    return app


def test_bodies_up_to_the_limit_pass() -> None:
    with TestClient(echo_app(10)) as client:
        assert client.post("/echo", content=b"x" * 10).json() == {"length": 10}


def test_declared_length_over_the_limit() -> None:
    with TestClient(echo_app(10)) as client:
        response = client.post("/echo", content=b"x" * 11)
    assert response.status_code == 413
    assert response.json() == {"error": "request body is larger than 10 bytes", "field": None}


def test_streamed_body_over_the_limit() -> None:
    with TestClient(echo_app(10)) as client:
        response = client.post("/echo", content=iter([b"x" * 6, b"x" * 6]))
    assert response.status_code == 413
