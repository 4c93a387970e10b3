"""Structured logs: one JSON object per line (``CTR_LOG_FORMAT=json``), for log shippers.

Each line has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message`` and ``pid``
(the worker's, with several), any
``extra={...}`` fields given to the logging call, and ``exc`` with the traceback when there is one. An
access line (``uvicorn.access``: uvicorn's, and the direct routes' in http/protocol.py, with the same
arguments) also has ``client``, ``method``, ``path``, ``http_version`` and ``status`` as fields, so a log
query need not parse the message, and ``request_id`` when the request carried an ``X-Request-ID``.

An access line of a request that carried an ``X-Request-ID`` ends with ``request_id=<id>`` in either
format (``access_request_id``), so the line an ad server's id names can be found in the service's log.
"""

from __future__ import annotations

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
_NOT_GIVEN = object()


def access_request_id(record: logging.LogRecord) -> bool:
    """A filter for the access logger: the line of a request that carried an ``X-Request-ID`` (given as
    ``extra={"request_id": ...}``, or the ``REQUEST_ID`` of the task that logs it) ends with
    ``request_id=<id>`` and has it as the field ``request_id``."""
    given = record.__dict__.pop("request_id", _NOT_GIVEN)  # a direct route's line says its own, None included
    request_id = REQUEST_ID.get() if given is _NOT_GIVEN else given
    if request_id is not None and isinstance(record.args, tuple):
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
