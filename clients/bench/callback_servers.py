"""Reference servers without ASGI, for ``ctr bench serve``: HTTP/1.1 on an asyncio protocol and the
httptools parser, each request answered from callbacks (no task, no coroutine, no ASGI message).

- ``callback_only``: every POST body parsed with orjson and answered with one constant score per
  candidate, as ``asgi_only`` answers (clients/bench/asgi_apps.py);
- ``callback_batched``: the bodies read in one turn of the event loop scored together by the served
  model, as ``asgi_batched`` scores them (the same ``turn_batcher``; ``CTR_BENCH_MODEL_THREAD=true``
  runs the model on a thread of its own); a failing batch answers 500s.

They tell what the ASGI transport costs beside the model: ``asgi_only`` and ``asgi_batched`` do the same
work under uvicorn. Like those, they check nothing, keep every connection alive, and answer any GET
with an empty 200 (the bench's readiness probe), and run on uvloop where it is installed, as uvicorn's
"auto" loop does for them. Not a server to deploy: no time-outs, no pipelining
beyond what arrives in order, no limits.

``python -m clients.bench.callback_servers KIND PORT``
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import httptools
import orjson

from clients.bench.asgi_apps import CONSTANT, answer_body, turn_batcher

_EMPTY = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
_FAILED = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"


def answer_bytes(scores: list[dict[str, float]]) -> bytes:
    body = answer_body(scores)
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


class CallbackProtocol(asyncio.Protocol):
    """One connection; ``respond(data, write)`` answers a parsed POST body by calling ``write`` with
    the response's bytes, now or later."""

    respond: Callable[[dict, Callable[[bytes], None]], None]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.body = b""

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = b""

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.parser.get_method() != b"POST":
            self.transport.write(_EMPTY)
            return
        self.respond(orjson.loads(self.body), self.write)

    def write(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)


def constants(data: dict, write: Callable[[bytes], None]) -> None:
    write(answer_bytes([CONSTANT] * len(data["candidates"])))


def batched() -> Callable[[dict, Callable[[bytes], None]], None]:
    scores = turn_batcher()

    def respond(data: dict, write: Callable[[bytes], None]) -> None:
        def answered(future: asyncio.Future) -> None:
            write(_FAILED if future.exception() is not None else answer_bytes(future.result()))

        scores(data).add_done_callback(answered)

    return respond


async def serve(kind: str, port: int) -> None:
    respond = constants if kind == "callback_only" else batched()
    protocol = type("Protocol", (CallbackProtocol,), {"respond": staticmethod(respond)})
    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind not in ("callback_only", "callback_batched"):
        raise SystemExit(f"unknown kind {kind!r}: callback_only or callback_batched")
    try:  # the loop uvicorn's "auto" picks for the ASGI reference servers
        import uvloop
    except ImportError:
        asyncio.run(serve(kind, port))
    else:
        uvloop.run(serve(kind, port))
