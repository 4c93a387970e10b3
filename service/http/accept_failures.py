"""The event loop's failures to accept a connection, said once an interval instead of once a try.

With its file descriptors used up (``ulimit -n``), asyncio's accept loop logs ``socket.accept() out of
system resource`` with a traceback for each of up to ``backlog`` (2,048) tries in a row, and tries again a
second later: 1,031,494 lines (76 MB) in 10 s in the audit, enough to fill a small disk while the
service went on answering the connections it had. ``AcceptFailures`` lets one line through per
``interval_s``, without the traceback (the same ``OSError`` each time), saying how many it held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

ACCEPT_FAILURE = "socket.accept() out of system resource"  # asyncio's message (selector_events.py)
INTERVAL_S = 10.0


class AcceptFailures(logging.Filter):
    """A filter for the ``asyncio`` logger: its accept failures, one line per ``interval_s``."""

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self.said_at: float | None = None
        self.held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(ACCEPT_FAILURE):
            return True
        now = self.clock()
        if self.said_at is not None and now - self.said_at < self.interval_s:
            self.held_back += 1
            return False
        error = record.exc_info[1] if record.exc_info else None
        record.msg = f"{ACCEPT_FAILURE} ({error or 'no error given'}): new connections wait in the backlog"
        if self.held_back:
            record.msg += f"; {self.held_back} more since the last line"
        record.args, record.exc_info, record.exc_text = (), None, None
        self.said_at, self.held_back = now, 0
        return True
