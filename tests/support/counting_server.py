"""A loopback HTTP/1.1 connection handler for the load generator's tests: answers each request as told and
counts the connections it accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def counting_handler(handle_request: Callable[[int], Awaitable[bytes | None]]) -> tuple[Handler, list]:
    """An ``asyncio.start_server`` handler answering each request with ``await handle_request(n)`` (bytes,
    or None: no answer; n: connections accepted so far), and the list of the connections it accepted."""
    accepted: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:])
            await reader.readexactly(length)
            answer = await handle_request(len(accepted))
            if answer is None:
                continue
            writer.write(answer)
            if b"connection: close" in answer.lower():
                await writer.drain()
                break
        writer.close()

    return handle, accepted
