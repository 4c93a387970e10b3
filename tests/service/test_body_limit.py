from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from service.http.body import BodySizeLimitMiddleware, read_body
from service.http.errors import ApiError


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


def messages(*chunks: bytes) -> Receive:
    """A receive() giving the body in these ``http.request`` messages, ``more_body`` on all but the last."""
    queue = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]

    async def receive() -> Message:
        return queue.pop(0)

    return receive


def test_a_streamed_body_over_the_limit_in_chunks_each_under_it_is_refused() -> None:
    """The limit is on the running total of a streamed body, not on each chunk: two 6-byte messages against
    a limit of 10 are a 413. (The test client sends a streamed body as one message, so the middleware is
    called here directly.)"""
    sent: list[Message] = []

    async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": []}
    asyncio.run(BodySizeLimitMiddleware(reading_app, max_bytes=10)(scope, messages(b"x" * 6, b"x" * 6), send))
    assert sent[0]["status"] == 413
    assert b"larger than 10 bytes" in sent[1]["body"]


def test_read_body_takes_a_body_of_exactly_the_limit_and_refuses_one_byte_more() -> None:
    """``read_body`` (POST /v1/score's streamed bodies) accepts a body of exactly ``max_bytes``, read in
    several messages, and answers 413 to one byte more."""
    assert asyncio.run(read_body(messages(b"x" * 6, b"x" * 4), 10)) == b"x" * 10
    with pytest.raises(ApiError) as refused:
        asyncio.run(read_body(messages(b"x" * 6, b"x" * 5), 10))
    assert refused.value.status == 413
