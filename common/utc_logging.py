"""The time on a log line: UTC, ISO 8601 with milliseconds (``2026-12-05T21:20:57.938+00:00``), in the text
lines of the service and the command line as in the JSON lines' ``ts``.

The text lines said the host's local time with no zone (logging's default, ``2026-12-06 11:20:57,938`` on a
host set to Kiritimati while the response's ``Date`` said 21:20 GMT the day before): hosts, containers and
CI runners differ in their zone, and a line could not be matched to another machine's.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import TextIO


def utc_time(created: float) -> str:
    """A record's ``created`` (seconds since the epoch) as the lines say it."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class UtcFormatter(logging.Formatter):
    """A text format whose ``%(asctime)s`` is ``utc_time``."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_time(record.created)


class CurrentStderrHandler(logging.StreamHandler):
    """Writes each line to ``sys.stderr`` as it is when the line is written, not as it was when the handler was
    made: a second ``ctr`` command in one process (click's ``CliRunner``, a notebook, a script redirecting stderr)
    had its lines written to the first one's stream, closed by then ("--- Logging error ---", ``ValueError: I/O
    operation on closed file``), and its own stderr got none. logging's last-resort handler does the same."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def stderr_handler(text_format: str) -> logging.Handler:
    """A handler writing ``text_format`` lines to stderr, for ``logging.basicConfig(handlers=...)``."""
    handler = CurrentStderrHandler()
    handler.setFormatter(UtcFormatter(text_format))
    return handler
