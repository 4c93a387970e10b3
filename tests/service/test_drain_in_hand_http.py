"""A request in hand, its answer not begun, when the server begins to drain (SIGTERM: the protocol's
``shutdown``), on a real uvicorn server on a loopback port: its answer says ``Connection: close`` and no
``Keep-Alive`` hint (a response that closes promises no idle time after it), and the connection closes.
Only ``Connection: close`` was checked: a drain that kept the hint beside it passed every test."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from service.http.protocol import guarded_protocol, keep_alive_hint
from tests.support.protocol_server import LOOPS, REQUEST, read_until_closed, serving


def test_an_answer_not_begun_when_the_drain_starts_closes_without_the_keep_alive_hint() -> None:
    protocol = guarded_protocol(10.0, 10.0, 1.0, keep_alive_s=5.0)

    async def run() -> bytes:
        entered, release = asyncio.Event(), asyncio.Event()

        async def held(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            entered.set()
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

        loop = asyncio.get_running_loop()
        async with serving(protocol, 5.0, app=held, headers=keep_alive_hint(5.0)) as (port, _):
            with socket.create_connection(("127.0.0.1", port), timeout=5.0) as client:
                client.sendall(REQUEST)
                await asyncio.wait_for(entered.wait(), 5.0)
                (connection,) = protocol.read_deadlines.connections
                connection.shutdown()  # as the server does on SIGTERM
                release.set()
                return await loop.run_in_executor(None, read_until_closed, client)

    with asyncio.Runner(loop_factory=LOOPS["asyncio"]) as runner:
        response = runner.run(run())
    head = response.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200 ") and b"\r\nconnection: close" in head, response
    assert b"keep-alive" not in head, response
