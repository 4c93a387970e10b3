"""A loopback TCP proxy that delays what passes through it, as a network between a client and the
service does: each chunk of bytes at least ``delay_s`` late, and a side's close ``close_delay_s`` late.

While a server's close (its FIN) is on its way, its client may send a request on a connection the
server has already closed, and gets no answer: HTTP/1.1's keep-alive race, which on loopback happens
only within tens of microseconds. ``tests/clients/client/test_client.py`` makes it certain with a long close
delay; ``reports/keep_alive_race.py`` measures how often it happens with a millisecond each way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float, close_delay_s: float
) -> None:
    """Bytes from ``reader`` to ``writer``, each chunk ``delay_s`` late; their end ``close_delay_s`` late,
    as a close."""
    try:
        while data := await reader.read(65536):
            if delay_s:
                await asyncio.sleep(delay_s)
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    await asyncio.sleep(close_delay_s)
    writer.close()


@contextmanager
def latency_proxy(target_port: int, delay_s: float = 0.0, close_delay_s: float | None = None) -> Iterator[int]:
    """A proxy to ``127.0.0.1:target_port`` on a free loopback port, on an event loop in a thread of its
    own, until the block ends; its port. ``close_delay_s`` is ``delay_s`` unless given."""
    close_delay_s = delay_s if close_delay_s is None else close_delay_s
    loop = asyncio.new_event_loop()
    listening = threading.Event()
    ports: list[int] = []
    stop = asyncio.Event()

    async def connect(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                _pump(client_reader, server_writer, delay_s, close_delay_s),
                _pump(server_reader, client_writer, delay_s, close_delay_s),
            )
        except asyncio.CancelledError:  # the proxy stops: its connections end with it
            client_writer.close()
            server_writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(connect, "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
        listening.set()
        await stop.wait()
        server.close()
        connections = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not listening.wait(10):
        raise RuntimeError("the latency proxy did not start")
    try:
        yield ports[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
