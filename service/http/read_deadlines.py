"""Read deadlines of every open connection, checked by one timer for the whole loop.

Each connection has one read deadline at a time (the keep-alive wait, its headers, its body, or the
drain's idle wait; http/protocol.py). Arming an event-loop timer for each phase of each request and
cancelling it when the phase ended was three or four ``call_later`` / ``cancel`` pairs per request, and
a heap of cancelled timers for the loop to sweep (what removing them bought: docs/serving.md, "The hot
path", and docs/serving-log.md, "Before and after the reorganisation"). A phase now just records when it is due, and one
timer per loop walks the open connections every ``interval_s`` and times out those past their due
time. A time-out fires up to ``interval_s`` late: the read time-outs are seconds long, and the interval
a small fraction of the shortest of them.

One pass times out at most ``MAX_TIMEOUTS_PER_PASS`` connections; when more are past due the next pass
comes ``MIN_INTERVAL_S`` later. Connections opened together go idle together: a load generator's 512
warm connections, never used, reached their idle limit in one or two passes, which spent 5-9 ms
closing them (their ``connection_lost`` callbacks after that). Requests sent meanwhile went out on the
client's next idle connections, the ones being closed, and were lost: each lost request was the first
on a connection opened 10.05-10.07 s before (docs/serving-log.md, "Idle connections closed under a
request"). 32 at a time cost the loop under 1 ms a pass.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

MIN_INTERVAL_S = 0.01
MAX_INTERVAL_S = 0.25
MAX_TIMEOUTS_PER_PASS = 32


class Reading(Protocol):
    """What the sweep reads of a connection."""

    read_due: float  # loop time when its current read phase times out (inf: none)

    def read_timed_out(self) -> None: ...


def sweep_interval(*timeouts_s: float) -> float:
    """A tenth of the shortest time-out, within [MIN_INTERVAL_S, MAX_INTERVAL_S]."""
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, min(timeouts_s) / 10))


class ReadDeadlines:
    """The open connections of one event loop; times out each whose read phase is past due."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.connections: set[Reading] = set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def sweeping(self) -> bool:
        """Whether the timer is armed (it is while any connection is open)."""
        return self._timer is not None

    def add(self, connection: Reading, loop: asyncio.AbstractEventLoop) -> None:
        self.connections.add(connection)
        if self._timer is None:
            self._timer = loop.call_later(self.interval_s, self._sweep, loop)

    def remove(self, connection: Reading) -> None:
        self.connections.discard(connection)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        due = [c for c in self.connections if c.read_due <= now]
        for connection in due[:MAX_TIMEOUTS_PER_PASS]:
            connection.read_due = math.inf
            connection.read_timed_out()
        # the timer stops with the last connection, and starts again with the next one
        interval_s = MIN_INTERVAL_S if len(due) > MAX_TIMEOUTS_PER_PASS else self.interval_s
        self._timer = loop.call_later(interval_s, self._sweep, loop) if self.connections else None
