"""Whether the loop ``ServiceServer.run`` serves on is in asyncio's debug mode, read without serving anything:
importable alone, by the test's process and by a fresh interpreter it starts with ``-X dev``."""

from __future__ import annotations

import asyncio

import uvicorn

from service.server import ServiceServer


async def no_app(scope: object, receive: object, send: object) -> None:
    """An app the server is never started with: its ``serve`` is replaced by one reading the loop."""


def debug_of_loop_served_on(loop: str) -> bool:
    """Whether the loop ``ServiceServer.run`` serves on (``loop``: uvicorn's name) is in debug mode."""
    server = ServiceServer(uvicorn.Config(no_app, loop=loop))
    seen = []

    async def serve(sockets: object = None) -> None:
        seen.append(asyncio.get_running_loop().get_debug())

    server.serve = serve  # type: ignore[method-assign]
    server.run()
    return seen[0]
