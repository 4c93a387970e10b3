"""The protocol ``ctr serve`` runs (service/http/protocol.py) on a real uvicorn server on a free loopback port,
in the test's own loop (either of the loops ``CTR_EVENT_LOOP`` offers), answering every request "ok"; a request
for it, and the reading of its answer from a client socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
import uvloop

from service.http.protocol import GuardedHttpProtocol

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}  # CTR_EVENT_LOOP's choices


async def plain(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(
    protocol: type[GuardedHttpProtocol],
    keep_alive_s: float,
    server_class: type[uvicorn.Server] = uvicorn.Server,
    app: Any = plain,
    headers: list[tuple[str, str]] | None = None,
) -> AsyncIterator[tuple[int, uvicorn.Server]]:
    """A uvicorn server (of ``server_class``) with ``protocol`` on a free loopback port, in this loop, serving
    ``app`` (``plain``) with ``headers`` on every response; its port and the server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http=protocol,
        timeout_keep_alive=keep_alive_s,
        headers=headers,
        log_config=None,
        lifespan="off",
        access_log=False,
    )
    server = server_class(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield listener.getsockname()[1], server
    finally:
        server.should_exit = True
        await task


def read_response(client: socket.socket) -> bytes:
    """What the server sends until its response is complete (its 2-byte body) or it closes."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while not data.endswith(b"ok"):
            chunk = client.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def read_until_closed(client: socket.socket) -> bytes:
    """What the server sends until it closes the connection (or the socket's time-out passes without a byte)."""
    data = b""
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while chunk := client.recv(65536):
            data += chunk
    return data
