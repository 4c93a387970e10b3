"""The protocol's direct routes (http/protocol.py): a POST answered by a handler called with its whole
body, without a task or ASGI messages, driven here over a transport that records its writes."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from service.http.disconnect import DEPARTURE
from service.http.protocol import DirectRoutes, Reply, guarded_protocol
from tests.support.recorded_connection import RecordingTransport, plain


def post(body: bytes, path: str = "/direct", chunked: bool = False) -> bytes:
    if chunked:
        return b"POST %s HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            path.encode(),
            len(body),
            body,
        )
    return b"POST %s HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


class Handler:
    """Records each call; answers when told (``answer``), echoing the body."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict, bytes, Reply]] = []

    def __call__(self, scope: dict, body: bytes, reply: Reply) -> None:
        self.calls.append((scope, body, reply))

    def answer(self, index: int, status: int = 200) -> None:
        _, body, reply = self.calls[index]
        reply(status, [(b"content-length", str(len(body)).encode())], body)


def connection(handler: Handler, routes: DirectRoutes | None = None) -> tuple[Any, RecordingTransport, DirectRoutes]:
    routes = routes or DirectRoutes({"/direct": handler})
    config = uvicorn.Config(
        plain,
        http=guarded_protocol(10.0, 10.0, 1.0, keep_alive_headers=[("keep-alive", "timeout=5")], direct=routes),
        log_config=None,
        lifespan="off",
        headers=[("keep-alive", "timeout=5")],
        access_log=False,
    )
    config.load()
    state = ServerState()
    state.default_headers = config.encoded_headers  # as uvicorn's server sets them (with its date)
    protocol = config.http_protocol_class(config=config, server_state=state, app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport, routes


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_the_handler_gets_the_whole_body_and_its_reply_is_written_as_uvicorn_writes() -> None:
    async def run() -> None:
        handler = Handler()
        protocol, transport, routes = connection(handler)
        request = post(b'{"candidates": [1, 2]}')
        protocol.data_received(request[:-5])
        await turns()
        assert handler.calls == []  # not before its body is whole
        protocol.data_received(request[-5:])
        await turns()  # the handler runs on the loop's next turn (the door sees every arrival first)
        ((scope, body, _),) = handler.calls
        assert body == b'{"candidates": [1, 2]}' and scope["path"] == "/direct" and DEPARTURE in scope
        assert routes.in_flight == 1 and transport.writes == []
        handler.answer(0)
        assert routes.in_flight == 0
        (written,) = transport.writes
        head, _, body = written.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nkeep-alive: timeout=5" in head and b"connection: close" not in head
        assert body == b'{"candidates": [1, 2]}' and not transport.closed
        protocol.data_received(post(b"again"))  # the connection goes on
        await turns()
        handler.answer(1)
        assert transport.writes[-1].endswith(b"\r\n\r\nagain")

    asyncio.run(run())


def test_other_requests_go_to_the_app() -> None:
    async def run() -> None:
        handler = Handler()
        protocol, transport, _ = connection(handler)
        protocol.data_received(post(b"x", chunked=True))  # no declared length
        protocol.data_received(post(b"x", path="/other"))
        protocol.data_received(post(b"x" * (32 * 1024 + 1)))  # larger than the direct routes take
        await turns()
        assert handler.calls == []
        assert b"".join(transport.writes).count(b"\r\n\r\nok") == 3  # the ASGI app's answers

    asyncio.run(run())


def test_pipelined_requests_start_in_turn_and_are_answered_in_order() -> None:
    async def run() -> None:
        handler = Handler()
        protocol, transport, _ = connection(handler)
        protocol.data_received(post(b"first") + post(b"second") + post(b"third", chunked=True))
        await turns()
        assert len(handler.calls) == 1  # the second waits for the first's answer
        handler.answer(0)
        await turns()
        assert len(handler.calls) == 2 and handler.calls[1][1] == b"second"
        handler.answer(1, status=422)
        await turns()  # the third, through the app
        answers = b"".join(transport.writes)
        assert answers.index(b"first") < answers.index(b"HTTP/1.1 422") < answers.index(b"\r\n\r\nok")

    asyncio.run(run())


def test_a_lost_connection_tells_the_request_and_its_late_reply_writes_nothing() -> None:
    async def run() -> None:
        handler = Handler()
        protocol, transport, routes = connection(handler)
        protocol.data_received(post(b"body"))
        await turns()
        scope = handler.calls[0][0]
        protocol.connection_lost(None)
        assert scope[DEPARTURE].gone
        handler.answer(0, status=499)
        assert transport.writes == [] and routes.in_flight == 0

    asyncio.run(run())


def test_connection_close_and_the_drain_close_after_the_answer() -> None:
    async def run() -> None:
        handler = Handler()
        protocol, transport, _ = connection(handler)
        protocol.data_received(post(b"body")[:-4])
        protocol.shutdown()  # SIGTERM with a request in hand
        protocol.data_received(b"body")
        await turns()
        handler.answer(0)
        assert b"\r\nconnection: close\r\n" in transport.writes[0] and transport.closed

    asyncio.run(run())


def test_an_answered_direct_request_is_freed_with_the_collector_off() -> None:
    async def run() -> bool:
        handler = Handler()
        protocol, _, _ = connection(handler)
        protocol.data_received(post(b"one"))
        await turns()
        handler.answer(0)
        first = weakref.ref(protocol.cycle)
        handler.calls.clear()
        protocol.data_received(post(b"two"))
        await turns()
        handler.answer(0)
        handler.calls.clear()
        return first() is None

    gc.disable()
    try:
        assert asyncio.run(run())
    finally:
        gc.enable()


def test_a_handler_that_raises_gets_the_service_s_json_500_and_the_connection_closes() -> None:
    """It was uvicorn's plain-text "Internal Server Error", which a client parsing the documented error body
    (``{"error", "field"}``, as every other route's 500) could not read."""

    async def run() -> None:
        def broken(scope: dict, body: bytes, reply: Reply) -> None:
            raise RuntimeError("a bug")

        protocol, transport, routes = connection(Handler(), DirectRoutes({"/direct": broken}))
        protocol.data_received(post(b"body"))
        await turns()
        (written,) = transport.writes
        assert written.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        head, body = written.split(b"\r\n\r\n", 1)
        head += b"\r\n"
        assert b"\r\ncontent-type: application/json\r\n" in head and b"\r\nconnection: close\r\n" in head
        assert b"\r\ncontent-length: %d\r\n" % len(body) in head
        assert json.loads(body) == {"error": "internal server error", "field": None}
        assert transport.closed and routes.in_flight == 0

    asyncio.run(run())


def test_a_connection_lost_before_the_handler_s_turn_starts_nothing() -> None:
    async def run() -> None:
        handler = Handler()
        protocol, transport, routes = connection(handler)
        protocol.data_received(post(b"body"))
        protocol.connection_lost(None)  # before the loop's next turn
        await turns()
        assert handler.calls == [] and routes.in_flight == 0 and transport.writes == []

    asyncio.run(run())
