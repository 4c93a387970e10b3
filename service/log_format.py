"""Structured logs: one JSON object per line (``CTR_LOG_FORMAT=json``), for log shippers.

Each line has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message`` and ``pid``
(the worker's, with several), any
``extra={...}`` fields given to the logging call, and ``exc`` with the traceback when there is one. An
access line (``uvicorn.access``: uvicorn's, and the direct routes' in http/protocol.py, with the same
arguments) also has ``client``, ``method``, ``path``, ``http_version`` and ``status`` as fields, so a log
query need not parse the message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

# LogRecord's own attributes: everything else on a record came from `extra=` and is logged as a field
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


# the arguments of an access line, in order: '%s - "%s %s HTTP/%s" %d'
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_"))
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            line.update(zip(ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
