"""The protocol ``ctr serve`` runs (service/http/protocol.py), driven in the test's own loop over a transport
that records its writes: no socket, no server, every byte the connection wrote kept for the test to read."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import uvicorn
from uvicorn.server import ServerState

# what uvicorn's server puts on every response (ctr serve adds the keep-alive hint)
DEFAULT_HEADERS = ((b"server", b"uvicorn"), (b"date", b"Sat, 05 Dec 2026 10:00:00 GMT"), (b"keep-alive", b"timeout=5"))


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def plain(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def answered(protocol: Any, request: bytes) -> None:
    protocol.data_received(request)
    for _ in range(20):
        await asyncio.sleep(0)


def guarded_connection(config: uvicorn.Config) -> tuple[Any, RecordingTransport]:
    """A connection of ``config``'s protocol (loaded here) on a transport that records its writes, given the
    headers uvicorn's server puts on every response."""
    config.load()
    server_state = ServerState()
    server_state.default_headers = list(DEFAULT_HEADERS)
    connection = config.http_protocol_class(config=config, server_state=server_state, app_state={})
    transport = RecordingTransport()
    connection.connection_made(transport)
    return connection, transport


def statuses(response: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", response)
