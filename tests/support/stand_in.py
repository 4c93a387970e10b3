"""A loopback HTTP/1.1 stand-in for the service, for the client's tests of answers the real service gives
only under conditions no test can make happen on cue (an overloaded queue) or never gives (a malformed
answer): every request's body is read, its headers recorded, and ``answer`` writes the reply."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[BaseHTTPRequestHandler], None]


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    """A whole answer: the status line, ``headers`` with the JSON content type and length, and ``body``."""
    handler.send_response(status)
    for name, value in {"content-type": "application/json", **(headers or {})}.items():
        handler.send_header(name, value)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def stand_in(answer: Answer) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The stand-in's URL and the headers of each request it received, in order (names lowercased)."""
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            received.append({name.lower(): value for name, value in self.headers.items()})
            answer(self)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
