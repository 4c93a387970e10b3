"""The HTTP/1.1 connection: read time-outs for slow clients, a drain that answers every request, and
the news that a request's client left.

uvicorn's own protocol (httptools) closes a keep-alive connection idle for ``timeout_keep_alive``, but
not one that sends half a request and stalls: 2,000 such connections held their sockets for as long
as the clients liked. Here every connection has one read deadline at a time (checked for all of them
by one timer of the loop: http/read_deadlines.py):

- **idle**: until a request's first bytes: from the connection's start at most
  ``CTR_HEADER_TIMEOUT_S``, from the end of a response at most uvicorn's keep-alive time-out (which
  armed a timer of its own per response; ``ctr serve`` sets it to ``CTR_KEEP_ALIVE_S`` plus
  ``CTR_KEEP_ALIVE_GRACE_S``, and tells clients ``CTR_KEEP_ALIVE_S``: ``keep_alive_hint``); then the
  connection is closed without a word;
- **headers**: from a request's first bytes until its headers are complete, at most
  ``CTR_HEADER_TIMEOUT_S``;
- **body**: from the headers until the body is complete, at most ``CTR_BODY_TIMEOUT_S``.

When the headers or the body are late the client gets ``408 Request Timeout`` (with ``Connection:
close``) if no response has started, and the connection is closed; a request the application was
reading sees a disconnect.

**An idle close racing a request.** A client may send a request on an idle connection just as its time
is up: the bytes are in the kernel, not yet read by the busy loop, when the sweep comes. Closing then
lost the request (the close resets a connection with unread data) or, when a fresh connection's wait
counted as its headers' and was answered 408, handed the client a 408 for a request the server never
read: up to 49 requests in a 10-s step of the overload bench, whose warm connections went idle together
(docs/serving-log.md, "Idle connections closed under a request"). So an idle connection is never answered
408, and one whose socket holds unread bytes (``FIONREAD``) is not closed: its request is arriving, and
its headers' time starts. What the server cannot see is a request still on the wire as it closes: the
client that sent it gets no answer. So every response that keeps the connection tells the client how long
it may stay idle (``Keep-Alive: timeout=N``, as Node's server does, nodejs/node#34561; none on one that says
``Connection: close``: ``without_hint``), and the server waits
a grace longer than that (Node's ``keepAliveTimeoutBuffer``): a client that honours the hint (Node's
undici, Apache HttpClient) closes an idle connection before the server does.

**Drain (SIGTERM).** uvicorn stops accepting and closes idle keep-alive connections at once; a client
that had just sent a request on one lost it without a response (61-63 per drain under steady load).
Instead, a connection busy with a request answers it with ``Connection: close``; an idle one is left
open for ``CTR_DRAIN_IDLE_S``: a request that arrives meanwhile is answered with ``Connection: close``,
and only a connection that stayed idle the whole time is closed. Under load every connection carries
a request within that time, so each is closed by the server right after a response, never under a
request in flight. A connection made after the server began to drain (accepted a turn before the
listener closed, or waiting in its queue: http/drain.py) drains from its start (``server_draining``).

**A client that leaves.** Each request's scope carries a ``Departure`` (http/disconnect.py) that the
connection tells when it is lost before the response is complete, so a request waiting for its
batches drops its work at once, with no task of its own reading ``receive()`` to find out. Its access
line is written then, as nginx writes one: status 499, ``duration_ms`` until the client left, ``error="client
closed the request"`` and its request id, on a direct route and an ASGI one alike (the answer that comes
later reaches nobody and writes no line: uvicorn's ``send`` drops it, as ``_write_response`` does). No
line was written: the ad server that timed out and hung up, the usual cause of a "slow bid", left only a
count of 499s in the metrics. A request the protocol answered itself (a 408, a refusal) has its own line.

**Direct routes: a request answered without ASGI.** Under ``ctr serve``, a POST to a direct route
(``/v1/score``) with a declared body of at most ``INLINE_BODY_BYTES`` and no ``Expect: 100-continue`` is
not given an asyncio task and ASGI messages: once its body is complete the connection calls the route's
handler with the scope and the body, on the loop's next turn (as a task would start: the door reads
every request that arrived with it before the loop spends time on any; called at once, the door's 503s
took 25-94 ms at p99 under twice the sustainable load, against 14-22 ms through the app). The handler
answers through ``reply`` (status, headers, body) when its outcome is known; the response is written
here as uvicorn writes it (its default headers, the keep-alive hint, ``Connection: close`` when the
connection closes after it, the access log line), and the connection goes on as after any response.
Everything else (a pipelined request behind one in hand is started in turn) is unchanged. On the
benchmark machine a task, its coroutines and the ASGI messages cost more per batched 1-candidate
request than the model did (docs/serving-log.md, "A floor without ASGI").

**When a request arrived, and refusing it at the door.** Each request's scope carries ``RECEIVED``: when
its first bytes reached the host, on the event loop's clock (the loop's time at the first read, less
how long the kernel had held the socket's latest data: Linux's ``TCP_INFO``, millisecond resolution;
accept-queue time included, as a request is sent with its connection). Deadlines start there, not when
a handler first runs. With its headers parsed, a request's wait so far goes to the entry watch
(http/overload.py); when the watch says so, an inference request is answered 503 here, from canned
bytes, its body read and dropped, the connection kept alive: no request object, no task, no JSON.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import socket
import struct
import sys
from collections.abc import Callable, Collection, Mapping

try:
    import fcntl
    import termios
except ImportError:  # not a POSIX system: unread bytes are not known
    fcntl = termios = None  # type: ignore[assignment]

import httptools
from starlette.types import Message
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from service.binding import peer_shown
from service.http.body import INLINE_BODY_BYTES
from service.http.disconnect import DEPARTURE, Departure
from service.http.errors import CLIENT_CLOSED, INTERNAL_ERROR, error_body
from service.http.failure_lines import FailureLines
from service.http.overload import QueueWatch
from service.http.read_deadlines import ReadDeadlines, sweep_interval
from service.http.request_head import REQUEST_ID, REQUEST_IDS, Refusal, read_head
from service.http.scope_keys import (
    ANSWERED_BY_PROTOCOL,
    RECEIVED,
    REFUSED_REQUEST_ID,
    SCOPE_REQUEST_ID,
    SCOPE_TRACEPARENT,
)
from service.log_format import FAILED, REQUEST_SCOPE, correlation, log_access_line, note_error

logger = logging.getLogger(__name__)

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n%scontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n%s\r\n%s"
)


_SHED_BODY = b'{"error": "server overloaded: requests wait too long to be read; retry later", "field": null}'
MAX_HEAD_BYTES = 64 * 1024  # a request's line and headers, in bytes read before its headers are complete
MAX_HEADER_FIELDS = 100  # header fields per request (Apache's LimitRequestFields)
MAX_TARGET_BYTES = 8 * 1024  # a request's target (its URL), as nginx's request line (large_client_header_buffers)
HEAD_TOO_LARGE = Refusal(431, f"the request line and headers exceed {MAX_HEAD_BYTES} bytes")
TARGET_TOO_LONG = Refusal(414, f"the request's target (its URL) exceeds {MAX_TARGET_BYTES} bytes")
NOT_HTTP = Refusal(400, "the bytes received are not a valid HTTP/1.1 request")
UNKNOWN_METHOD = Refusal(501, "the request's method is not implemented (the service answers GET, HEAD and POST)")
VERSION_NOT_SUPPORTED = Refusal(505, "the request's HTTP version is not supported: send HTTP/1.1")
# llhttp's words for a version it does not parse (1.2, 3.0) and for HTTP/2's connection preface (PRI * HTTP/2.0)
_VERSION_ERRORS = frozenset({"Invalid HTTP version", "Pause on PRI/Upgrade"})
_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ ")  # a method (RFC 9110's token) and the space after it
TOO_MANY_FIELDS = Refusal(431, f"more than {MAX_HEADER_FIELDS} header fields")
_REFUSED_RESPONSE = b"%s%scontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n%s\r\n%s"
_SHED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n%scontent-type: application/json\r\nretry-after: %d\r\n"
    b"content-length: %d\r\n%s%s\r\n%s"
)
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_LAST_DATA_RECV = struct.Struct("=I")  # struct tcp_info's tcpi_last_data_recv (ms), at byte 52
_LAST_DATA_RECV_AT = 52
_FIONREAD = getattr(termios, "FIONREAD", None)
_UNREAD = struct.Struct("=i")
_INTERNAL = error_body(INTERNAL_ERROR)  # JSON, as every other 500 of the service: never a bare one
_INTERNAL_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_INTERNAL))]
INVALID_REQUEST = "Invalid HTTP request received."  # uvicorn's warning as its parser stops: send_400_response

Headers = list[tuple[bytes, bytes]]
Reply = Callable[[int, Headers, bytes], None]  # status, headers (lower-case names), body
DirectHandler = Callable[[dict, bytes, Reply], None]  # the scope, the whole body, how to answer


class DirectRoutes:
    """POST paths answered by a handler called with the whole body (no task, no ASGI), and how many of
    their requests are in hand."""

    def __init__(self, handlers: Mapping[str, DirectHandler]) -> None:
        self.handlers = {path.encode(): handler for path, handler in handlers.items()}
        self.in_flight = 0


def kernel_wait_s(sock: socket.socket | None) -> float:
    """How long ago the kernel received the socket's latest data, in seconds (0 where unknown)."""
    if sock is None or _TCP_INFO is None:
        return 0.0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _LAST_DATA_RECV_AT + 4)
    except OSError:
        return 0.0
    return _LAST_DATA_RECV.unpack_from(info, _LAST_DATA_RECV_AT)[0] / 1000 if len(info) >= 56 else 0.0


def unread_bytes(sock: socket.socket | None) -> int:
    """How many bytes the kernel holds for the socket that have not been read (0 where unknown)."""
    if sock is None or _FIONREAD is None:
        return 0
    try:
        return _UNREAD.unpack(fcntl.ioctl(sock.fileno(), _FIONREAD, bytes(_UNREAD.size)))[0]
    except OSError:
        return 0


_KEEP_ALIVE = b"keep-alive"


def accepted_peer(transport: asyncio.BaseTransport) -> tuple[str, int] | None:
    """The client's address as accept() returned it (the transport's ``peername``): uvicorn's ``client`` asks
    the socket (``getpeername``), which raises ENOTCONN once the client has reset the connection, and a request
    sent just before the reset (SO_LINGER 0) had its access line name no client (`` - "POST ..." 499``). Its
    host and port (an IPv6 peer's four fields' first two), which the access line and the protocol's refusals
    write as every client (binding.peer_shown); None where there is none (a Unix socket's)."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return None


def keep_alive_hint(keep_alive_s: float) -> list[tuple[str, str]]:
    """The ``Keep-Alive`` response header telling clients how long an idle connection stays open (whole
    seconds, rounded down; none under a second, where the hint would say 0)."""
    return [(_KEEP_ALIVE.decode(), f"timeout={int(keep_alive_s)}")] if keep_alive_s >= 1 else []


def without_hint(headers: Headers) -> Headers:
    """A response's default headers less the keep-alive hint: a response that says ``Connection: close``
    promises no idle time after it (the two together contradict each other)."""
    return [(name, value) for name, value in headers if name != _KEEP_ALIVE]


def will_close(cycle: RequestResponseCycle) -> None:
    """Makes the response of ``cycle``, not started yet, say ``Connection: close`` without the hint, and the
    connection close after it (uvicorn's ``send`` and ``_write_response`` read ``keep_alive``)."""
    cycle.keep_alive = False
    cycle.default_headers = without_hint(cycle.default_headers)


def parser_refusal(error: BaseException | None) -> Refusal:
    """The refusal of a request the parser (llhttp) stopped at: ``UNKNOWN_METHOD`` where it stopped at the
    method (told from bytes that are no request by ``method_refusal``), 505 for an HTTP version it does not
    parse, 400 for anything else."""
    if isinstance(error, httptools.HttpParserInvalidMethodError):
        return UNKNOWN_METHOD
    if str(error) in _VERSION_ERRORS:
        return VERSION_NOT_SUPPORTED
    return NOT_HTTP


def method_refusal(request: bytes) -> Refusal:
    """The refusal of bytes whose first word llhttp knows as no method: 501 where they begin as a request
    line does, a token and a space (``BREW /v1/score``: RFC 9110 section 9.1 has an origin server answer 501
    to a method it does not recognize, where uvicorn said 400), else 400 (a TLS handshake on the plain port,
    ``GARBAGE``)."""
    return UNKNOWN_METHOD if _METHOD.match(request.lstrip(b"\r\n")) else NOT_HTTP


class _NoEvent:
    """The message event of a request that has no reader: setting it does nothing."""

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class _Refused:
    """Stands for a request answered 503 by the protocol: its body is read and dropped. It refers to
    nothing of its own, so it is freed when the next request replaces it (the collector never sees it:
    under overload there is one per refusal)."""

    response_started = response_complete = True
    disconnected = False
    body = b""
    more_body = False
    message_event = _NO_EVENT  # uvicorn sets it on disconnect

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive


class _AwaitingContinue(RequestResponseCycle):
    """The cycle of a request whose client waits for ``100 Continue`` before sending its body (it takes this
    class with its head: ``on_headers_complete``): an answer started before the body is asked for says
    ``Connection: close`` and closes the connection (RFC 9110 section 10.1.1: a server answering before the
    whole body says whether it closes or reads on). Refused, the client sends no body, and uvicorn kept the
    connection and read its next request as that body, never answered (a 415 for its content type). A client
    that is sending its body (a 413 from its ``Content-Length``, the door's 503s) has it read on and dropped,
    as the body time-out bounds: closing with its bytes unread makes the kernel reset the connection, and on
    a network the reset can reach the client before the answer is read (nginx's lingering close and Go's
    server read on for the same reason). The other cycles keep uvicorn's ``send``: nothing more per request."""

    async def send(self, message: Message) -> None:  # type: ignore[override]
        if self.waiting_for_100_continue and not self.response_started:
            will_close(self)
        await super().send(message)  # type: ignore[arg-type]


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read time-outs, a lossless drain, and refusals
    at the door."""

    header_timeout_s = 10.0
    body_timeout_s = 10.0
    drain_idle_s = 1.0
    watch: QueueWatch | None = None  # None: no refusals at the door
    shed_paths: Collection[bytes] = ()  # POST paths refused when the watch says so (and any ending /infer)
    retry_after_s = 1
    on_refused: Callable[[], None] | None = None  # counts a refusal at the door (the app's 503 metric)
    on_answered: Callable[[int], None] | None = None  # counts another answer of its own (408, 400, 500)
    kept_alive_headers = b""  # on the protocol's own 503s that keep the connection: the keep-alive hint
    read_deadlines = ReadDeadlines(sweep_interval(header_timeout_s, body_timeout_s, drain_idle_s))
    direct: DirectRoutes | None = None  # None: every request through the ASGI app
    failure_lines: FailureLines | None = None  # with the access log off, the lines still written (None: all or none)
    server_draining = False  # set on the signal (http/drain.py): a connection made from then on drains

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.read_due = math.inf  # when the current read phase times out (loop clock)
        self._reading = "idle"  # which phase: idle, headers, body or drain
        self._departure: Departure | None = None  # the request in hand's, told if the connection is lost
        self._draining = False
        self._received: float | None = None  # when the request being read reached the host
        self._heads_begun = 0  # requests whose parsing began on this connection
        self._in_head = False  # a request's line and headers are being parsed
        self._head_bytes = 0  # its line's and complete fields' bytes so far
        self._head_read_bytes = 0  # the bytes of reads that held nothing but its head (a field being parsed)
        self._head_refusal: Refusal | None = None  # why its head was refused (431, 414, 400, 501, 505)
        # a refusal to write once the requests before it are answered (then the connection closes): status, bytes
        self._refusal_behind: tuple[int, bytes] | None = None
        self._dropping_body = False  # the request was refused at its headers: its body is read and dropped
        self._shed_candidate = False  # the request is one the watch may refuse (an inference POST)
        self._request_id: bytes | None = None  # the request's X-Request-ID, echoed on its response
        self._socket = transport.get_extra_info("socket")
        self._direct_waiting: tuple[RequestResponseCycle, DirectHandler] | None = None  # for its body
        self._closed_after_response = False  # a response said Connection: close: none behind it is answered
        self._method_unknown = False  # the parser stopped at a request's method: answered once its bytes are seen
        if self.watch is not None:
            self.watch.watch_loop(self.loop)
        if self.failure_lines is not None and self.failure_lines.rationed:
            self.access_log = False  # uvicorn's for each request: the lines of failures alone are written
        super().connection_made(transport)
        if self.client is None:  # uvicorn asks the socket, which forgets its peer once reset (ENOTCONN)
            self.client = accepted_peer(transport)
        self.read_deadlines.add(self, self.loop)
        self._arm(self.header_timeout_s, "idle")  # until the first request's first bytes
        if self.server_draining:  # accepted before the listener closed, made after the server told the others
            self.shutdown()

    def data_received(self, data: bytes) -> None:
        if self._refusal_behind is not None:  # the parser has stopped; uvicorn's receive() resumes reading
            return
        fresh = self._received is None  # the read begins a request
        if fresh:  # a request's first bytes
            self._received = self.loop.time() - kernel_wait_s(self._socket)
            if self._reading == "idle":
                self._arm(self.header_timeout_s, "headers")
        head, begun = self._in_head, self._heads_begun
        super().data_received(data)
        if self._method_unknown:  # send_400_response left it here, where the bytes are
            self._method_unknown = False
            first = fresh and self._heads_begun == begun + 1  # the read begins with it: its bytes are known
            self._refuse_and_close(method_refusal(data) if first else NOT_HTTP)
            return
        # complete fields are counted as parsed (on_header); a field still being parsed, which httptools
        # gathers whole before it is handed over, by the reads that held nothing but one request's head
        if head and self._in_head and begun == self._heads_begun and not self.transport.is_closing():
            self._head_read_bytes += len(data)
            if self._head_read_bytes > MAX_HEAD_BYTES:
                self._refuse_and_close(HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._head_read_bytes = True, 0, 0
        self._heads_begun += 1
        self._shed_candidate = False
        self._request_id = None  # read with the head (on_headers_complete)
        self.scope[RECEIVED] = self._received if self._received is not None else self.loop.time()  # type: ignore[literal-required]
        self._departure = self.scope[DEPARTURE] = Departure()  # type: ignore[literal-required]

    def connection_lost(self, exc: Exception | None) -> None:
        self.read_deadlines.remove(self)
        self._direct_waiting = None
        cycle = self.cycle
        in_hand = cycle is not None and not cycle.response_complete
        super().connection_lost(exc)
        if in_hand and self._departure is not None:
            if (
                not cycle.response_started  # type: ignore[union-attr]
                and ANSWERED_BY_PROTOCOL not in cycle.scope  # type: ignore[union-attr]
                and not self._closed_after_response
            ):
                self._client_left(cycle)  # type: ignore[arg-type]
            self._departure.leave()

    def _client_left(self, cycle: RequestResponseCycle) -> None:
        """The access line of a request whose client left before its answer began (see the module's text).
        Not of a request pipelined behind one whose response closed the connection (an HTTP/1.0 request's,
        uvicorn's answer to ``Connection: close``, a drain's): the server closed it, RFC 9112 section 9.6 has
        it read no request after that one, and its line said 499 "client closed the request"."""
        note_error(cycle.scope, CLIENT_CLOSED)
        if cycle.access_log or (self.failure_lines is not None and self.failure_lines.let_through()):
            log_access_line(cycle.scope, 499)  # type: ignore[arg-type]

    def on_url(self, url: bytes) -> None:
        """uvicorn's, within the target's bound: past it, 414 (RFC 9112 section 3; as each part arrives)."""
        self._head_bytes += len(url)
        if len(self.url) + len(url) > MAX_TARGET_BYTES:
            self._head_refusal = TARGET_TOO_LONG
            raise ValueError("request target too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """uvicorn's, within the head's bounds: past them, an exception stops the parser (uvicorn then
        calls send_400_response, which answers 431). Checked as each field arrives: counted once the
        head was complete, 60 KB of 4-byte fields held 1.4 MB of Python objects per connection first."""
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_refusal = HEAD_TOO_LARGE
            raise ValueError("request head too large")
        if len(self.headers) >= MAX_HEADER_FIELDS:
            self._head_refusal = TOO_MANY_FIELDS
            raise ValueError("too many header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """uvicorn's, after the head's own checks (http/request_head.py: refused as a head too large is,
        by stopping the parser), and the door's (a 503 at once while requests wait too long); the
        request's ``X-Request-ID`` (or the one it is given) goes on its response, and an ``X-Request-ID`` that
        breaks the rule or a valid ``traceparent`` on its scope, for its lines."""
        self._in_head = False
        head = read_head(self.headers, self.parser.get_http_version())
        self._head_refusal, self._request_id, refused_request_id, traceparent = head
        if self._request_id is None:
            self._request_id = REQUEST_IDS.next_id()
        if refused_request_id is not None:  # for its lines, the refusal's included (log_format.correlation)
            self.scope[REFUSED_REQUEST_ID] = refused_request_id  # type: ignore[literal-required]
        if traceparent is not None:
            self.scope[SCOPE_TRACEPARENT] = traceparent  # type: ignore[literal-required]
        if self._head_refusal is not None:
            raise ValueError("request head refused")
        self.scope[SCOPE_REQUEST_ID] = self._request_id  # type: ignore[literal-required]
        if self.watch is not None and (self.cycle is None or self.cycle.response_complete) and not self.pipeline:
            now = self.loop.time()
            sheddable = self._shed_candidate = self.parser.get_method() == b"POST" and self._sheddable(self.url)
            in_hand = len(self.tasks) + (self.direct.in_flight if self.direct is not None else 0)
            if self.watch.refuse(now - self.scope[RECEIVED], now, in_hand, sheddable):  # type: ignore[literal-required]
                self._refuse()
                self._arm(self.body_timeout_s, "body")
                return
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            if self.expect_100_continue:  # its body comes once asked for: an answer before that closes
                cycle.__class__ = _AwaitingContinue
            if self._draining:
                cycle.keep_alive = False  # answered with Connection: close
            # a response closing the connection (HTTP/1.0, the client's Connection: close, a drain) says no idle time
            defaults = cycle.default_headers if cycle.keep_alive else without_hint(cycle.default_headers)
            cycle.default_headers = [*defaults, (REQUEST_ID, self._request_id)]
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._received = None
        if self.watch is not None and self._shed_candidate and self.cycle is not None:
            self.watch.read(self.loop.time(), self.cycle)
        if self._dropping_body:
            self._dropping_body = False
            if self.cycle.keep_alive:
                self.on_response_complete()
            else:
                self.transport.close()
        elif self._direct_waiting is not None and self._direct_waiting[0] is self.cycle:
            cycle, handler = self._direct_waiting
            self._direct_waiting = None
            self._run_direct(cycle, handler)

    # -- direct routes ------------------------------------------------------------------------------

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: object) -> None:
        """uvicorn's, except for a request to a direct route: its handler runs once its body is in."""
        handler = self._direct_handler(cycle) if app is self.app else None
        if handler is None:
            # the task's context, copied as it is created, holds the scope the access line it logs reads (a
            # pipelined request is started from the task of the one before it: it would log that one's)
            token = REQUEST_SCOPE.set(cycle.scope)
            try:
                super()._start_asgi_task(cycle, app)  # type: ignore[arg-type]
            finally:
                REQUEST_SCOPE.reset(token)
        elif cycle.more_body:
            self._direct_waiting = (cycle, handler)
        else:  # a pipelined request, read whole while the one before it was answered
            self._run_direct(cycle, handler)

    def _direct_handler(self, cycle: RequestResponseCycle) -> DirectHandler | None:
        scope = cycle.scope
        if self.direct is None or scope["method"] != "POST" or scope["root_path"] or cycle.waiting_for_100_continue:
            return None
        handler = self.direct.handlers.get(scope["raw_path"])
        if handler is None:
            return None
        length = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = value
            elif key == b"content-encoding":
                return None  # the app decodes it (http/content_coding.py)
        # chunked, or no body: the ASGI app reads (and refuses) it
        return handler if length is not None and length.isdigit() and int(length) <= INLINE_BODY_BYTES else None

    def _run_direct(self, cycle: RequestResponseCycle, handler: DirectHandler) -> None:
        self.loop.call_soon(self._run_direct_now, cycle, handler)  # the next turn: see the module's text

    def _run_direct_now(self, cycle: RequestResponseCycle, handler: DirectHandler) -> None:
        if cycle.disconnected:
            return
        assert self.direct is not None
        self.direct.in_flight += 1
        answered = False

        def reply(status: int, headers: Headers, body: bytes) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            self.direct.in_flight -= 1  # type: ignore[union-attr]
            self._write_response(cycle, status, headers, body)

        try:
            handler(cycle.scope, bytes(cycle.body), reply)
        except Exception:  # a handler answers its own errors: this is a bug, answered 500 as any other route's
            logger.exception("unhandled error in the direct route %s", cycle.scope["path"])
            will_close(cycle)
            if not answered:
                self._answered(500)
                note_error(cycle.scope, INTERNAL_ERROR)  # type: ignore[arg-type]
            reply(500, list(_INTERNAL_HEADERS), _INTERNAL)

    def _write_response(self, cycle: RequestResponseCycle, status: int, headers: Headers, body: bytes) -> None:
        """What uvicorn's ``send`` writes for a whole response, and the connection's next step."""
        if cycle.disconnected or cycle.response_complete or self.transport.is_closing():
            return
        cycle.response_started = cycle.response_complete = True
        if cycle.access_log:
            log_access_line(cycle.scope, status)  # type: ignore[arg-type]
        elif status >= FAILED and self.failure_lines is not None:
            self.failure_lines.failed(cycle.scope, status)  # type: ignore[arg-type]
        content = [STATUS_LINE[status]]
        for name, value in cycle.default_headers:
            content += (name, b": ", value, b"\r\n")
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", body)
        self.transport.write(b"".join(content))
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _sheddable(self, url: bytes) -> bool:
        path = url.split(b"?", 1)[0]
        return path in self.shed_paths or path.endswith(b"/infer")

    def _refuse(self) -> None:
        """Answer 503 now; the body that follows is dropped (``_Refused`` is complete)."""
        keep_alive = (
            self.parser.should_keep_alive() and not self._draining and not self.expect_100_continue  # _AwaitingContinue
        )
        self.cycle = _Refused(keep_alive)  # type: ignore[assignment]
        close = self.kept_alive_headers if keep_alive else b"connection: close\r\n"
        self.transport.write(
            _SHED_RESPONSE
            % (self._own_fields(), self.retry_after_s, len(_SHED_BODY), close, self._said_id(), _SHED_BODY)
        )
        self._shed_candidate = False
        if self.expect_100_continue:
            self.transport.close()  # the client waits for a 100 before its body: none is coming
        else:
            self._dropping_body = True
        if self.on_refused is not None:
            self.on_refused()

    def _said_id(self) -> bytes:
        """The ``X-Request-ID`` header line of the request being answered by the protocol itself, or b""."""
        return b"" if self._request_id is None else b"x-request-id: %s\r\n" % self._request_id

    def _own_fields(self) -> bytes:
        """The ``Date`` and ``Server`` header lines of the server's responses, for the protocol's own
        (RFC 9110 section 6.6.1: an origin server with a clock MUST send ``Date``)."""
        return b"".join(
            b"%s: %s\r\n" % (name, value)
            for name, value in self.server_state.default_headers
            if name in (b"date", b"server")
        )

    def _answered(self, status: int) -> None:
        if self.on_answered is not None:
            self.on_answered(status)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are no HTTP request (its own: plain text, written at once), as
        the protocol's other refusals are answered; a head refused here with its own status and reason, and
        what the parser stopped at (``parser_refusal``: uvicorn calls this where it catches the parser's error)."""
        refusal = self._head_refusal
        if refusal is None:
            refusal = parser_refusal(sys.exc_info()[1])
            if refusal is UNKNOWN_METHOD:  # 501 or 400, told from the bytes read: data_received answers it
                self._method_unknown = True
                return
        self._refuse_and_close(refusal)

    def _refuse_and_close(self, refusal: Refusal) -> None:
        """The refusal's status, then close: bytes that are no HTTP request (400), a request's target,
        line and headers past their bounds (414, 431), a method or version the parser does not know (501, 505),
        or a head http/request_head.py refuses (400, 501, 505).
        uvicorn keeps every header in a list as it is parsed, so 40 MB of headers on one connection took
        600 MB of memory until the header time-out, and a few connections could exhaust a container's.

        Written at once, a refusal behind requests not yet answered was read as the first one's answer and
        theirs were lost (uvicorn's too: two pipelined requests then bad bytes got one 400). So reading
        stops, the requests before it are answered in turn, then the refusal is written and the connection
        closes (RFC 9112 section 9.3.2: responses in the order of the requests). Bad bytes inside the body
        of the request being read are that request's own answer."""
        if self._refusal_behind is not None:  # refused already: it is written once the requests before it are
            return
        status, reason, field = refusal
        self._log_refusal(status, reason)
        body = error_body(reason, field)
        response = _REFUSED_RESPONSE % (STATUS_LINE[status], self._own_fields(), len(body), self._said_id(), body)
        latest = self.cycle  # the last request whose head was read; those before it were answered first
        if latest is not None and not latest.response_complete:
            if not latest.more_body:  # its body is complete: the refusal is the next request's
                self._refuse_behind(status, response)
                return
            # its body is bad: this is its answer (the app's reaches nobody, and its line is this one)
            latest.scope[ANSWERED_BY_PROTOCOL] = True  # type: ignore[literal-required]
            if self.pipeline and self.pipeline[0][0] is latest:  # and it waits its turn
                self.pipeline.popleft()
                self._refuse_behind(status, response)
                return
        self._write_refusal(status, response)

    def _log_refusal(self, status: int, reason: str) -> None:
        """The refusal's line, in place of an access line: its status, reason and request id (the answer's:
        where to find it) in the message and as fields (``extra``: a JSON line's ``status``, ``error``,
        ``request_id``) and the client's address as the access line names it (``client``: who sends the bytes
        refused); while the access log is off, within the failures' budget (http/failure_lines.py: a
        client sending bad bytes in a loop wrote a line each). uvicorn's own warning of the same refusal,
        without the id, is not written (``said_by_protocol``)."""
        if self.failure_lines is not None and not self.failure_lines.let_through():
            return
        client = self._peer()
        fields: dict[str, int | str] = {"status": status, "error": reason, "client": client}
        said = said_id = ""
        if self._request_id is not None:  # its head was read
            fields["request_id"] = request_id = self._request_id.decode("ascii")
            said_id = f" request_id={request_id}"
            correlated = correlation(self.scope)  # the caller's own ids (a refused X-Request-ID, a trace)
            if correlated is not None:
                said, caller_fields = correlated
                fields.update(caller_fields)
        # INFO whatever the status: the client's bytes are at fault, a 501 or 505 is no failure of the service
        logger.info("refused a request (%d) from %s: %s%s%s", status, client, reason, said, said_id, extra=fields)

    def _peer(self) -> str:
        """The connection's client as an access line names it (``host:port``, ``[addr]:port`` for IPv6:
        binding.peer_shown; "" where unknown: a Unix socket)."""
        return peer_shown(*self.client) if self.client else ""

    def _write_refusal(self, status: int, response: bytes) -> None:
        self.transport.write(response)
        self._answered(status)
        self.transport.close()

    def _refuse_behind(self, status: int, response: bytes) -> None:
        self._refusal_behind = (status, response)
        self.flow.pause_reading()
        self._disarm()  # nothing more is read: the connection closes once the requests in hand are answered

    def on_response_complete(self) -> None:
        """uvicorn's, except that the wait for the next request is the connection's idle read phase
        instead of a keep-alive timer armed per response."""
        self.server_state.total_requests += 1
        if self.watch is not None and not isinstance(self.cycle, _Refused):
            self.watch.answered += 1
        if self.transport.is_closing():  # the response said Connection: close (or the client is gone)
            self._closed_after_response = True
            return
        if self._refusal_behind is not None:  # the requests before a refusal are answered, then it
            if self.pipeline:
                self._start_asgi_task(*self.pipeline.pop())
            else:
                self._write_refusal(*self._refusal_behind)
            return
        self.flow.resume_reading()
        if self.pipeline:  # a pipelined request waits: start it
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._draining:
            self._arm(self.drain_idle_s, "drain")
        else:
            self._arm(self.timeout_keep_alive, "idle")

    def shutdown(self) -> None:
        """Called by the server on SIGTERM: finish the request in hand, or wait a little for one."""
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            if not self.pipeline:
                self._arm(self.drain_idle_s, "drain")
        elif not self.cycle.response_started:
            will_close(self.cycle)  # type: ignore[arg-type]
        else:
            self.cycle.keep_alive = False

    def _arm(self, seconds: float, what: str) -> None:
        self.read_due = self.loop.time() + seconds
        self._reading = what

    def _disarm(self) -> None:
        self.read_due = math.inf

    def read_timed_out(self) -> None:
        """Called by ``read_deadlines`` once the read phase is past due."""
        what = self._reading
        if self.transport.is_closing():
            return
        if what in ("idle", "drain") and unread_bytes(self._socket):  # a request is arriving: not idle
            self._arm(self.header_timeout_s, "headers")
            return
        if what not in ("idle", "drain") and not self._dropping_body:  # a refused request was answered
            in_hand = self.cycle is not None and not self.cycle.response_complete
            if not (in_hand and self.cycle.response_started):
                if in_hand:
                    self.cycle.scope[ANSWERED_BY_PROTOCOL] = True  # type: ignore[literal-required]
                body = b'{"error": "request %s not received within the time-out", "field": null}' % what.encode()
                said_id = self._said_id() if what == "body" else b""  # a late head's id is not known
                self.transport.write(_TIMEOUT_RESPONSE % (self._own_fields(), len(body), said_id, body))
                self._answered(408)
            logger.info("closed a connection from %s whose request %s did not arrive in time", self._peer(), what)
        self.transport.close()


def guarded_protocol(
    header_timeout_s: float,
    body_timeout_s: float,
    drain_idle_s: float,
    keep_alive_s: float = 5.0,
    watch: QueueWatch | None = None,
    shed_paths: Collection[str] = (),
    retry_after_s: int = 1,
    on_refused: Callable[[], None] | None = None,
    on_answered: Callable[[int], None] | None = None,
    keep_alive_headers: Collection[tuple[str, str]] = (),
    direct: DirectRoutes | None = None,
    failure_lines: FailureLines | None = None,
) -> type[GuardedHttpProtocol]:
    """The protocol class with these time-outs and this entry watch, for ``uvicorn.Config(http=...)``
    (whose ``timeout_keep_alive``, the idle time after a response, must be ``keep_alive_s``);
    ``keep_alive_headers`` (``keep_alive_hint``'s) go on its own 503s that keep the connection, as uvicorn
    puts them on the application's responses; ``direct``: the routes answered without ASGI; ``failure_lines``:
    the lines written while the access log is off (None: every line, or none, as uvicorn's access logger says)."""
    interval_s = sweep_interval(header_timeout_s, body_timeout_s, drain_idle_s, keep_alive_s)
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "drain_idle_s": drain_idle_s,
            "watch": watch,
            "shed_paths": frozenset(path.encode() for path in shed_paths),
            "retry_after_s": retry_after_s,
            "on_refused": staticmethod(on_refused) if on_refused is not None else None,
            "on_answered": staticmethod(on_answered) if on_answered is not None else None,
            "kept_alive_headers": b"".join(
                f"{name}: {value}\r\n".encode("latin-1") for name, value in keep_alive_headers
            ),
            "read_deadlines": ReadDeadlines(interval_s),
            "direct": direct,
            "failure_lines": failure_lines,
        },
    )


def said_by_protocol(record: logging.LogRecord) -> bool:
    """A filter for uvicorn's logger: False for its warning of bytes its parser refused, which the protocol
    answers and logs itself (``_log_refusal``, with the status, the reason and the request id): each refused
    request wrote both lines, the warning without its id."""
    return record.msg != INVALID_REQUEST
