"""An answered request is freed by reference counting, not left to the garbage collector.

The server runs with its collector's young threshold raised (service/gc_tuning.py), on the premise that
requests leave no reference cycles behind. A cycle through the connection's per-request objects (a
scratch writer that kept a reference to its request cycle did) leaves every request's cycle, scope
and body for the collector: 300,000 objects collected in a 40,000-request run instead of 700
(docs/serving-log.md "One write per response, tried"). This drives the protocol ``ctr serve`` runs over a
transport that records its writes, with the collector off.

The same holds for a request refused at the door: its stand-in for the request cycle once referred to
itself, so under twice the sustainable rate every 503 (60,000 in a 10-s run) was garbage for the
collector, found in its young and middle collections (docs/serving-log.md, "The overload row's slow 503s").
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import uvicorn
from uvicorn.server import ServerState

from service.http.protocol import guarded_protocol
from tests.support.recorded_connection import RecordingTransport, answered, plain
from tests.support.refusing_watch import RefusingWatch


def first_freed_with_the_collector_off(protocol_class: type, requests: tuple[bytes, bytes]) -> tuple[bool, bytes]:
    """Two requests on one connection of ``protocol_class``, the collector off: whether the first one's
    request cycle was freed once the second replaced it, and what was written."""

    async def run() -> tuple[bool, bytes]:
        config = uvicorn.Config(plain, http=protocol_class, log_config=None, lifespan="off")
        config.load()
        protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        await answered(protocol, requests[0])
        first = weakref.ref(protocol.cycle)
        await answered(protocol, requests[1])
        return first() is None, b"".join(transport.writes)

    gc.disable()
    try:
        return asyncio.run(run())
    finally:
        gc.enable()


def test_an_answered_request_is_freed_once_the_next_replaces_it_with_the_collector_off() -> None:
    requests = (b"GET /a HTTP/1.1\r\nhost: t\r\n\r\n", b"GET /b HTTP/1.1\r\nhost: t\r\n\r\n")
    freed, written = first_freed_with_the_collector_off(guarded_protocol(10.0, 10.0, 1.0), requests)
    assert written.count(b"\r\n\r\nok") == 2  # both answered
    assert freed


def test_a_request_refused_at_the_door_is_freed_once_the_next_replaces_it_with_the_collector_off() -> None:
    protocol_class = guarded_protocol(10.0, 10.0, 1.0, watch=RefusingWatch(0.025, 0.1), shed_paths=("/v1/score",))
    request = b"POST /v1/score HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"
    freed, written = first_freed_with_the_collector_off(protocol_class, (request, request))
    assert written.count(b"HTTP/1.1 503") == 2  # both refused, the connection kept
    assert freed
