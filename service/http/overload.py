"""Admission at the door, before a body is read: the event loop's own delay, and large bodies' bytes.

**Loop delay.**
The batchers refuse a request whose expected queue wait passes its deadline (batching/policy.py). But
a request's deadline starts when its handler runs; when the event loop itself is behind (more
requests arrive than it can parse and answer), requests wait in the sockets and in the loop's ready
queue before that, unseen, and clients time out. So a timer ticks every ``TICK_S`` and measures how
late it runs: the loop's queueing delay. As CoDel does with a packet queue, the loop counts as
overloaded while the *smallest* delay over the last ``INTERVAL_S`` stays above ``TARGET_S`` (a standing
queue, not a burst); meanwhile inference requests are answered 503 before their body is read, which
costs a fraction of serving them, until the delay falls back under the target.

**Large bodies.** A body is read whole and parsed into Python objects several times its size: 96
concurrent 3.9 MB V2 infer bodies took the process to 1.2 GB. A request whose body may exceed
``INLINE_BODY_BYTES`` (its Content-Length, or the size limit when chunked) first takes that many bytes
from ``CTR_BODY_BYTES_IN_FLIGHT``, waiting in arrival order (its socket unread: uvicorn stops reading a
connection whose body is not consumed) and gives them back when answered; one that waits longer than
the body time-out is answered 503.
"""

from __future__ import annotations

import asyncio
from collections import deque

TICK_S = 0.005  # how often the loop's delay is sampled
TARGET_S = 0.025  # a standing delay above this is overload (CoDel's target)
INTERVAL_S = 0.1  # ... when it lasts this long (CoDel's interval)


class LoopDelay:
    """The event loop's queueing delay, sampled by a timer; ``overloaded`` while it stands above target."""

    def __init__(self, target_s: float = TARGET_S, interval_s: float = INTERVAL_S, tick_s: float = TICK_S) -> None:
        self.target_s = target_s
        self.interval_s = interval_s
        self.tick_s = tick_s
        self.overloaded = False
        self.shed = 0  # requests answered 503 because of it
        self._window_min = float("inf")  # smallest delay since the window began
        self._window_start = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._window_start = loop.time()
        self._schedule(loop)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        due = loop.time() + self.tick_s
        self._timer = loop.call_at(due, self._tick, loop, due)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = loop.time()
        self.observe(now - due, now)
        self._schedule(loop)

    def observe(self, delay_s: float, now: float) -> None:
        """One sample of the loop's delay at ``now``: a window ends every ``interval_s``, and the loop is
        overloaded for the next window when the smallest delay in this one was over the target."""
        self._window_min = min(self._window_min, delay_s)
        if delay_s <= self.target_s:
            self.overloaded = False  # any sample under the target ends overload at once
        if now - self._window_start >= self.interval_s:
            self.overloaded = self._window_min > self.target_s
            self._window_min = float("inf")
            self._window_start = now


class BodyBudget:
    """Bytes of large request bodies being read, parsed and answered at once, at most ``capacity``;
    takers wait in arrival order."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    async def acquire(self, size: int, timeout_s: float) -> int | None:
        """Take ``size`` bytes (at most the capacity); the bytes taken, or None after ``timeout_s``."""
        size = min(size, self.capacity)
        if not self._waiting and self.used + size <= self.capacity:
            self.used += size
            return size
        granted = asyncio.get_running_loop().create_future()
        self._waiting.append((size, granted))
        try:
            await asyncio.wait_for(asyncio.shield(granted), timeout_s)
        except TimeoutError:
            if granted.done() and not granted.cancelled():  # granted as the time-out fired
                return size
            granted.cancel()
            self._waiting = deque(w for w in self._waiting if w[1] is not granted)
            return None
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(size)
            granted.cancel()
            self._waiting = deque(w for w in self._waiting if w[1] is not granted)
            raise
        return size

    def release(self, size: int) -> None:
        self.used -= size
        while self._waiting and self.used + self._waiting[0][0] <= self.capacity:
            size, granted = self._waiting.popleft()
            if not granted.done():
                self.used += size
                granted.set_result(None)
