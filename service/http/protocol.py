"""The HTTP/1.1 connection: read time-outs for slow clients, and a drain that answers every request.

uvicorn's own protocol (httptools) closes a keep-alive connection idle for ``timeout_keep_alive``, but
not one that sends half a request and stalls: 2,000 such connections held their sockets for as long
as the clients liked. Here every connection gets one read timer at a time:

- **headers**: from the connection's start (or the end of its previous response) until its request's
  headers are complete, at most ``CTR_HEADER_TIMEOUT_S``;
- **body**: from the headers until the body is complete, at most ``CTR_BODY_TIMEOUT_S``.

When a timer fires the client gets ``408 Request Timeout`` (with ``Connection: close``) if no response
has started, and the connection is closed; a request the application was reading sees a disconnect.

**Drain (SIGTERM).** uvicorn stops accepting and closes idle keep-alive connections at once; a client
that had just sent a request on one lost it without a response (61-63 per drain under steady load).
Instead, a connection busy with a request answers it with ``Connection: close``; an idle one is left
open for ``CTR_DRAIN_IDLE_S``: a request that arrives meanwhile is answered with ``Connection: close``,
and only a connection that stayed idle the whole time is closed. Under load every connection carries
a request within that time, so each is closed by the server right after a response, never under a
request in flight.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read time-outs and a lossless drain."""

    header_timeout_s = 10.0
    body_timeout_s = 10.0
    drain_idle_s = 1.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_timer: asyncio.TimerHandle | None = None
        self._draining = False
        super().connection_made(transport)
        self._arm(self.header_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with Connection: close
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm(self.drain_idle_s if self._draining else self.header_timeout_s, "headers")

    def shutdown(self) -> None:
        """Called by the server on SIGTERM: finish the request in hand, or wait a little for one."""
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            if not self.pipeline:
                self._arm(self.drain_idle_s, "drain")
        else:
            self.cycle.keep_alive = False

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, self._timed_out, what)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self, what: str) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if what != "drain":
            in_hand = self.cycle is not None and not self.cycle.response_complete
            if not (in_hand and self.cycle.response_started):
                body = b'{"error": "request %s not received within the time-out", "field": null}' % what.encode()
                self.transport.write(_TIMEOUT_RESPONSE % (len(body), body))
            logger.info("closed a connection whose request %s did not arrive in time", what)
        self.transport.close()


def guarded_protocol(header_timeout_s: float, body_timeout_s: float, drain_idle_s: float) -> type[GuardedHttpProtocol]:
    """The protocol class with these time-outs, for ``uvicorn.Config(http=...)``."""
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s, "drain_idle_s": drain_idle_s},
    )
