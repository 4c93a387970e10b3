"""Structured logs: one JSON object per line (``CTR_LOG_FORMAT=json``), for log shippers.

Each line has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message`` and ``pid``
(the worker's, with several), any
``extra={...}`` fields given to the logging call, and ``exc`` with the traceback when there is one. An
access line (``uvicorn.access``: uvicorn's, and the direct routes' in http/protocol.py, with the same
arguments) also has ``client``, ``method``, ``path``, ``http_version`` and ``status`` as fields, so a log
query need not parse the message, ``duration_ms``, ``error`` when it was answered with one, and
``request_id``: its ``X-Request-ID``, or the one the service gave it (http/request_head.py).

An access line says ``duration_ms=<ms>``: from the request's arrival (its first bytes reaching the host,
the accept queue included: the scope's ``RECEIVED``, http/protocol.py) to its answer, so a request that
waited before the batcher saw it (a paused process, a backlog) shows its wait, which the metrics' request
durations (from the model's queue on) do not. The line of a request answered with an error then says
``error="<message>"``: the ``error`` of its JSON body (cut to ``ERROR_CHARS``), so the log tells why a 4xx
or 5xx was answered, which the status alone does not (a burst of 422s from one client's release, a 409
naming a refused version). The line then ends with ``request_id=<id>``, the request's ``X-Request-ID`` or
the one the service gave it and answered with, so the line an answer's id names can be found in the log
(``access_line_fields``, in either format). Each is read from the request's scope: given with the line
(``extra={"scope": ...}``, a direct route's) or that of the task that logs it (``REQUEST_SCOPE``).

Before its ``request_id``, the line of a request that carried them says what else ties it to its caller's
own logs (``correlation``; fields too in JSON): ``refused_request_id="<value>"``, an X-Request-ID that
breaks the rule (the request was given an id of its own), read as UTF-8 (a byte that is not: ``\\xNN``);
``trace_id=<32 hex> span_id=<16 hex>`` from a valid W3C ``traceparent``, which a log store's derived fields
(Loki's) turn into a link to the trace; and
``infer_id="<id>"``, a V2 infer body's ``id``. The protocol's "refused a request" line says them too.

An access line is written at INFO, and at WARNING for a failure of the service (status >= 500:
``access_level``), so an alert on warnings sees the 5xx answers, which were INFO lines like any other. A
499 (the client closed the request before its answer: http/protocol.py) stays INFO: the client chose it.
"""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar

import orjson
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from common.utc_logging import utc_time
from service.binding import peer_shown
from service.http.errors import cut
from service.http.scope_keys import (
    ERROR_MESSAGE,
    INFER_ID,
    RECEIVED,
    REFUSED_REQUEST_ID,
    SCOPE_REQUEST_ID,
    SCOPE_TRACEPARENT,
)
from service.http.trace_context import PARENT_ID, TRACE_ID

# LogRecord's own attributes: everything else on a record came from `extra=` and is logged as a field
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


# the arguments of an access line, in order: '%s - "%s %s HTTP/%s" %d'
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
ACCESS_LOGGER = "uvicorn.access"
# the scope of the request whose ASGI task this is (set as http/protocol.py starts it), for its access line
REQUEST_SCOPE: ContextVar[dict | None] = ContextVar("request_scope", default=None)
_NOT_GIVEN = object()
ERROR_CHARS = 300  # of an error's message on its access line (messages quote at most 40 characters of a value)
# of a caller's id quoted on a line (refused_request_id, infer_id): enough to find it by, never a 20 KB line
CALLER_ID_CHARS = 64
_QUOTED = frozenset({"refused_request_id", "infer_id"})  # the caller's text, quoted as an error is


FAILED = 500  # from this status on, an answer is a failure of the service: its access line is a warning
CLIENT_LEFT = 499  # the client closed the request before its answer (nginx's): said, at INFO
_ACCESS_LOG = logging.getLogger(ACCESS_LOGGER)


def access_level(status: int) -> int:
    """The level of the access line of an answer with this status."""
    return logging.WARNING if status >= FAILED else logging.INFO


def client_shown(client: str) -> str:
    """An IPv6 client of an access line, as uvicorn writes it (``get_client_addr``: ``::1:44850``), as a URL
    writes it (binding.peer_shown: ``[::1]:44850``; an IPv4 client of the dual-stack ``::`` as IPv4). Done as
    the line is written (``access_line_fields``), not per request: uvicorn makes its line's arguments itself."""
    host, _, port = client.rpartition(":")
    return peer_shown(host, int(port))


def log_access_line(scope: dict, status: int) -> None:
    """The access line of the request of ``scope``, answered with ``status``, as uvicorn's ``send`` writes
    one, at ``access_level``: for the lines the service writes itself (a direct route's answer, a request
    whose client left, a failure while the access log is off)."""
    _ACCESS_LOG.log(
        access_level(status),
        '%s - "%s %s HTTP/%s" %d',
        get_client_addr(scope),
        scope["method"],
        get_path_with_query_string(scope),
        scope["http_version"],
        status,
        extra={"scope": scope},
    )


def note_error(scope: dict, message: str) -> None:
    """Keeps the message of the error a request is answered with on its scope, for its access line."""
    scope[ERROR_MESSAGE] = cut(message, ERROR_CHARS)


def note_error_body(scope: dict, body: bytes) -> None:
    """``note_error`` with the ``error`` of a JSON error body (``{"error": ..., "field": ...}``), if it is one."""
    try:
        message = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return
    if isinstance(message, str):
        note_error(scope, message)


def access_line_fields(record: logging.LogRecord) -> bool:
    """A filter for the access logger: the line says ``duration_ms=<ms>`` from the request's arrival to its
    answer, ``error="<message>"`` for a request answered with an error, the ``correlation`` fields of a
    request that carried any, and ends with ``request_id=<id>``
    (its ``X-Request-ID``, or the one it was given: every request the protocol read a head of has one;
    the ASGI application alone, in tests, gives none); each also a field. Each is read from the request's scope,
    given as ``extra={"scope": ...}`` (a direct route's line), else the ``REQUEST_SCOPE`` of the task that
    logs it (an ASGI route's). A failure's line (``access_level``) is raised to WARNING, and its IPv6 client
    is bracketed (``client_shown``)."""
    if not isinstance(record.args, tuple):
        return True
    if record.name == ACCESS_LOGGER:  # an HTTP line (gRPC's, service.grpc.access, says its level itself)
        level = access_level(record.args[4])  # its status (ACCESS_FIELDS)
        if level > record.levelno:  # uvicorn's own lines are INFO whatever their status
            record.levelno, record.levelname = level, logging.getLevelName(level)
        client = record.args[0]  # ACCESS_FIELDS
        if client.count(":") > 1 and client[0] != "[":  # an IPv6 peer's as uvicorn writes it (IPv4's: one colon)
            record.args = (client_shown(client), *record.args[1:])
    scope = record.__dict__.pop("scope", _NOT_GIVEN)  # a direct route's line says its own
    scope = REQUEST_SCOPE.get() if scope is _NOT_GIVEN else scope
    if scope is None:
        return True
    received = scope.get(RECEIVED)
    if received is not None:
        try:
            now = asyncio.get_running_loop().time()  # the clock RECEIVED was read on (asyncio's or uvloop's)
        except RuntimeError:  # logged off the event loop: no clock to compare with
            now = None
        if now is not None:
            record.duration_ms = duration = round(max(now - received, 0.0) * 1000.0, 3)
            record.msg = f"{record.msg} duration_ms=%s"
            record.args = (*record.args, duration)
    error = scope.get(ERROR_MESSAGE)
    if error is not None:
        record.error = error
        record.msg = f"{record.msg} error=%s"
        record.args = (*record.args, orjson.dumps(error).decode())  # quoted, its control characters escaped
    correlated = correlation(scope)
    if correlated is not None:
        said, fields = correlated
        record.__dict__.update(fields)
        record.msg = f"{record.msg}%s"
        record.args = (*record.args, said)
    request_id = scope.get(SCOPE_REQUEST_ID)
    if request_id is not None:
        # visible ASCII (an acceptable X-Request-ID, http/request_head.py) or the service's own: Latin-1 reads it
        # as UTF-8 would, and cannot fail
        record.request_id = request_id = request_id.decode("latin-1")
        record.msg = f"{record.msg} request_id=%s"
        record.args = (*record.args, request_id)
    return True


def correlation(scope: dict) -> tuple[str, dict[str, str]] | None:
    """What else ties a request's line to its caller's own logs, where it carried any (None: three look-ups):
    the words the line says before its ``request_id``, and the same as fields (JSON format).
    ``refused_request_id="<value>"``: the X-Request-ID it sent that breaks the rule (http/request_head.py),
    so a line the ad server's id names is found though the request was given another; ``trace_id=<32 hex>
    span_id=<16 hex>``: its W3C traceparent's trace and parent (http/trace_context.py), for a log store's link
    to the trace; ``infer_id="<id>"``: a V2 infer body's ``id`` (tritonclient's ``request_id``), which the
    answer's body carries. A caller's text is quoted as an error is and cut to ``CALLER_ID_CHARS``."""
    refused_request_id = scope.get(REFUSED_REQUEST_ID)
    traceparent = scope.get(SCOPE_TRACEPARENT)
    infer_id = scope.get(INFER_ID)
    if refused_request_id is None and traceparent is None and infer_id is None:
        return None
    fields = {}
    if refused_request_id is not None:
        # UTF-8, as a caller's client writes it (Latin-1 logged an id 日本 as æ—¥æœ¬, which a search for the
        # caller's id does not find); a byte that is not UTF-8 as \xNN, so the line still shows what arrived
        said_id = refused_request_id.decode("utf-8", "backslashreplace")
        fields["refused_request_id"] = cut(said_id, CALLER_ID_CHARS)
    if traceparent is not None:
        fields["trace_id"] = traceparent[TRACE_ID].decode("ascii")
        fields["span_id"] = traceparent[PARENT_ID].decode("ascii")
    if infer_id is not None:
        fields["infer_id"] = cut(infer_id, CALLER_ID_CHARS)
    said = "".join(
        f" {name}={orjson.dumps(value).decode() if name in _QUOTED else value}" for name, value in fields.items()
    )
    return said, fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_"))
        if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) >= 5:
            line.update(zip(ACCESS_FIELDS, record.args[:5], strict=True))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
