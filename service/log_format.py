"""Structured logs: one JSON object per line (``CTR_LOG_FORMAT=json``), for log shippers.

Each line has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message`` and ``pid``
(the worker's, with several), any
``extra={...}`` fields given to the logging call, and ``exc`` with the traceback when there is one. An
access line (``uvicorn.access``: uvicorn's, and the direct routes' in http/protocol.py, with the same
arguments) also has ``client``, ``method``, ``path``, ``http_version`` and ``status`` as fields, so a log
query need not parse the message, ``duration_ms``, and ``request_id`` when the request carried an
``X-Request-ID``.

An access line says ``duration_ms=<ms>``: from the request's arrival (its first bytes reaching the host,
the accept queue included: the scope's ``RECEIVED``, http/protocol.py) to its answer, so a request that
waited before the batcher saw it (a paused process, a backlog) shows its wait, which the metrics' request
durations (from the model's queue on) do not. A line of a request that carried an ``X-Request-ID`` then
ends with ``request_id=<id>``, so the line an ad server's id names can be found in the service's log
(``access_line_fields``, in either format).
"""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar

import orjson

from common.log_time import utc_time

# LogRecord's own attributes: everything else on a record came from `extra=` and is logged as a field
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


# the arguments of an access line, in order: '%s - "%s %s HTTP/%s" %d'
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
ACCESS_LOGGER = "uvicorn.access"
# the X-Request-ID of the request whose ASGI task this is (set as http/protocol.py starts it), for its access line
REQUEST_ID: ContextVar[bytes | None] = ContextVar("request_id", default=None)
# when that request arrived, on the event loop's clock (its scope's RECEIVED), for its access line's duration
REQUEST_RECEIVED: ContextVar[float | None] = ContextVar("request_received", default=None)
_NOT_GIVEN = object()


def access_line_fields(record: logging.LogRecord) -> bool:
    """A filter for the access logger: the line says ``duration_ms=<ms>`` from the request's arrival to its
    answer, and one of a request that carried an ``X-Request-ID`` ends with ``request_id=<id>``; each also a
    field. Each is given as ``extra={"received": ..., "request_id": ...}`` (a direct route's line), else read
    from the ``REQUEST_RECEIVED`` / ``REQUEST_ID`` of the task that logs it (an ASGI route's)."""
    if not isinstance(record.args, tuple):
        return True
    received = record.__dict__.pop("received", _NOT_GIVEN)
    received = REQUEST_RECEIVED.get() if received is _NOT_GIVEN else received
    if received is not None:
        try:
            now = asyncio.get_running_loop().time()  # the clock RECEIVED was read on (asyncio's or uvloop's)
        except RuntimeError:  # logged off the event loop: no clock to compare with
            now = None
        if now is not None:
            record.duration_ms = duration = round(max(now - received, 0.0) * 1000.0, 3)
            record.msg = f"{record.msg} duration_ms=%s"
            record.args = (*record.args, duration)
    given = record.__dict__.pop("request_id", _NOT_GIVEN)  # a direct route's line says its own, None included
    request_id = REQUEST_ID.get() if given is _NOT_GIVEN else given
    if request_id is not None:
        record.request_id = request_id = request_id.decode("latin-1")
        record.msg = f"{record.msg} request_id=%s"
        record.args = (*record.args, request_id)
    return True


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
