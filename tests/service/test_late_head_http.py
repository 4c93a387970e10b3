"""A request whose headers do not arrive within the header time-out, on a real uvicorn server on a loopback
port running the protocol ``ctr serve`` runs (service/http/protocol.py): 408 in JSON, saying ``Connection:
close`` as the connection closes (RFC 9110 section 15.5.9), so a client reading it knows not to send its next
request on that connection. Without the header, every test passed."""

from __future__ import annotations

import asyncio
import socket

import orjson

from service.http.protocol import guarded_protocol
from tests.support.protocol_server import LOOPS, read_until_closed, serving


def test_late_headers_are_answered_408_saying_connection_close() -> None:
    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        async with serving(guarded_protocol(0.3, 10.0, 1.0), 5.0) as (port, _):
            with socket.create_connection(("127.0.0.1", port), timeout=5.0) as client:
                client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n")  # and nothing more
                return await loop.run_in_executor(None, read_until_closed, client)

    with asyncio.Runner(loop_factory=LOOPS["asyncio"]) as runner:
        response = runner.run(run())
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), response
    assert b"\r\nconnection: close" in head.lower() and b"keep-alive" not in head.lower()
    assert orjson.loads(body) == {"error": "request headers not received within the time-out", "field": None}
