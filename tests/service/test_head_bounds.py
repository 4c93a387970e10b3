"""The request head's 64 KiB bound (service/http/protocol.py) where its two counts differ, on a real uvicorn
server on a loopback port: the bytes of reads that held nothing but the head (a field that never ends, which
httptools gathers whole before handing it over) and the complete fields as they are parsed (a head that
arrived in one read with the request before it, which the first count does not see). Each count alone was
left untested: either could be loosened fourfold with every test passing."""

from __future__ import annotations

import asyncio
import socket

from service.http.protocol import MAX_HEAD_BYTES, guarded_protocol
from tests.support.protocol_server import LOOPS, REQUEST, read_until_closed, serving

GET = b"GET / HTTP/1.1\r\nhost: x\r\n"


def exchanged(*sends: bytes) -> bytes:
    """What one connection to the protocol ``ctr serve`` runs receives for ``sends``, each its own write."""

    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        async with serving(guarded_protocol(10.0, 10.0, 1.0), 5.0) as (port, _):
            with socket.create_connection(("127.0.0.1", port), timeout=5.0) as client:
                for data in sends:
                    await loop.run_in_executor(None, client.sendall, data)
                    await asyncio.sleep(0.05)  # each its own read
                return await loop.run_in_executor(None, read_until_closed, client)

    with asyncio.Runner(loop_factory=LOOPS["asyncio"]) as runner:
        return runner.run(run())


def test_a_field_that_never_ends_is_refused_431_once_the_head_passes_its_bound() -> None:
    """The client stops inside a field past the bound and keeps the connection: it is answered at once, not
    left to grow the field (up to the header time-out) for as long as the client likes."""
    response = exchanged(GET, b"x-filler: " + b"a" * (MAX_HEAD_BYTES + 4096))
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    assert b"exceed 65536 bytes" in response


def test_a_head_past_its_bound_in_one_read_with_the_request_before_it_is_refused_431() -> None:
    """Fields complete, under the 100 a head may carry, 70 KB in all, sent with the request ahead of them:
    that one is answered, then the 431."""
    fields = b"".join(b"x-%d: %s\r\n" % (i, b"a" * 1400) for i in range(50))
    response = exchanged(REQUEST + GET + fields + b"\r\n")
    assert response.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 431 " in response, response[:400]
