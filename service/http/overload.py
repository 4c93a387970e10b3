"""Admission at the door, before a body is read: how long requests waited to be seen, and large bodies' bytes.

**Standing queue.**
The batchers refuse a request whose expected queue wait passes its deadline (batching/policy.py); but
that lets work in hand grow to most of the deadline, every core busy with it, and then requests wait
*before* any handler runs too: in the kernel's accept queue, in socket buffers, in the loop's ready
queue, unseen by the batchers. At twice the sustainable rate every answer was a 200, seconds late. So
the connection's protocol (http/protocol.py) asks this watch, with each request's headers, whether to
refuse it at once with a 503 written by the protocol itself: no request object, no task, no body parse,
so a refusal costs a small fraction of an answer and the loop keeps up at twice its capacity.

The rule is CoDel's (a standing queue, not a burst): the service's delay is the largest of how long the
new request waited to be read (from when its bytes reached the host), how long the oldest inference
request in hand has been in the service since it was read whole, and how long the requests in hand
will take at the rate the service has been answering (Little's law: requests in hand ÷ answers per
second, smoothed over ``RATE_WINDOW_S``). The last one sees work as it is admitted, not once it has
aged: without it, every request arriving while the oldest one was younger than the target was
admitted, and at twice the capacity the answers took 85-150 ms at p99 behind a 25-50 ms target
(docs/serving.md, "Hardening"). Once that delay has stayed above ``target_s`` for ``interval_s``
(``CTR_SHED_INTERVAL_MS``) the service is overloaded, until it has stayed under the target for
``interval_s``; while overloaded, an inference request that finds the delay above the target is
refused, one that finds it under is admitted. So work in hand is held near the target (bursts shorter
than the interval pass), and refusals come at once. The interval is what tells a queue from a stall:
a process paused for 50-60 ms (the host giving its core to another guest, a long collection) sees every
delay above a 25 ms target for a few tens of ms (the answer rate, measured through the pause, looks
low for as long), then drains at once; with a 20 ms interval such pauses under a light load drew
refusals of requests that would all have been answered, with 50 ms now and then, with 100 ms (CoDel's
default) none (docs/serving.md, "Pauses are not overload"). With fewer than ``min_in_flight`` requests
in hand a wait is another process's doing (a shared machine), not a queue: nothing is refused.

**Turning sooner when the reads fall behind.** The interval has a price at the onset of overload: while
the door waits it out, requests arrive faster than the loop reads them and wait in the kernel's buffers,
and the oldest of them had waited 100-230 ms when the door turned and refused them (on the 2-core Intel
VM at twice its sustainable rate: the overload row's 503 p99 missed its 50 ms in some runs). The two
cases differ in how the waits *to be read* move: after a pause the loop reads the backlog oldest first
(the kernel lists ready sockets in the order they became ready) and faster than it arrives, so those
waits fall; while requests arrive faster than the loop reads them they rise, at ``1 - read rate ÷
arrival rate`` seconds per second (0.5 at twice the capacity). So once the delay has stood above the
target for ``EARLY_FRACTION`` of the interval, over at least ``MIN_TREND_READS`` requests, and the
least-squares slope of those requests' read waits against time is at least ``RISING_SLOPE``, the
service is overloaded at once. A burst that lasts long enough to turn it costs the refusal of requests
whose delay is above the target: what the door refuses under overload anyway, but also what the
interval alone would have answered: at twice the capacity over half of it, bursts of 50 ms were
refused in part in 6 of 10 trials, where the interval alone answered them all within 57 ms
(docs/serving-log.md, "What a burst costs at the door").

**Large bodies.** A body is read whole and parsed into Python objects several times its size: 96
concurrent 3.9 MB V2 infer bodies took the process to 1.2 GB. A request whose body may exceed
``INLINE_BODY_BYTES`` (its Content-Length, or the size limit when chunked) takes that many bytes from
``CTR_BODY_BYTES_IN_FLIGHT`` before its body's first read, waiting in arrival order (its socket unread:
uvicorn stops reading a connection whose body is not consumed) and gives them back when answered; one
that waits longer than half the body time-out is answered 503. A request its route refuses from its head
alone (413 from a V2 body's Content-Length, 404, 401, 415) never reads its body and takes none.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

TICK_S = 0.005  # how often the loop's own delay and the answer rate are sampled while requests are in hand
IDLE_TICK_S = 0.05  # and with none in hand and no answer since the last sample: each wake-up costs CPU
RATE_WINDOW_S = 0.05  # the answer rate is smoothed over about this long
MIN_IN_FLIGHT = 16  # fewer requests in hand than this: a late request is not the service's queue
EARLY_FRACTION = 0.25  # the delay above the target for this share of the interval, with the read waits rising,
RISING_SLOPE = 0.25  # by at least this many seconds per second (arrivals 4/3 of the reads), is overload
MIN_TREND_READS = 16  # the slope is read from at least this many requests


class Answering(Protocol):
    """What the watch reads of a request being answered (uvicorn's request-response cycle)."""

    response_complete: bool
    disconnected: bool


class WaitTrend:
    """The least-squares slope of requests' read waits against the time they were read, from running sums
    (times taken from the first request's, so the sums keep their precision)."""

    def __init__(self) -> None:
        self.restart(0.0)

    def restart(self, now: float) -> None:
        self.origin = now
        self.count = 0
        self._t = self._w = self._tt = self._tw = 0.0

    def add(self, now: float, waited_s: float) -> None:
        t = now - self.origin
        self.count += 1
        self._t += t
        self._w += waited_s
        self._tt += t * t
        self._tw += t * waited_s

    def slope(self) -> float:
        """Seconds of wait gained per second (0 while the requests were all read at one instant)."""
        spread = self.count * self._tt - self._t * self._t
        return (self.count * self._tw - self._t * self._w) / spread if spread > 0.0 else 0.0


class QueueWatch:
    """The service's queueing delay as requests arrive; ``refuse`` says which to turn away at once."""

    def __init__(self, target_s: float, interval_s: float, min_in_flight: int = MIN_IN_FLIGHT) -> None:
        self.target_s = target_s
        self.interval_s = interval_s
        self.min_in_flight = min_in_flight
        self.refused = 0  # requests refused because of it
        self._in_hand: deque[tuple[float, Answering]] = deque()  # inference requests read whole, in that order
        self.overloaded = False  # the delay stood above the target for an interval, and has not stayed under since
        self._above_since: float | None = None  # since when the delay has been above the target
        self._below_since: float | None = None  # since when it has been under
        self._read_waits = WaitTrend()  # of the requests read since the delay went above the target
        self.early_turns = 0  # turns to overloaded on rising read waits, before the interval
        self.loop_lag_s = 0.0  # how late the watch's own timer last ran: the loop's queueing delay
        self._timer: asyncio.TimerHandle | None = None
        self.answered = 0  # responses completed (refusals at the door are not answers)
        self.answer_rate = 0.0  # responses per second while requests were in hand, smoothed
        self._answered_then = 0
        self._sampled_at: float | None = None

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sample the loop's own delay every ``TICK_S`` (until ``stop``), once per loop."""
        if self._timer is None:
            self._tick(loop, loop.time())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = loop.time()
        self.loop_lag_s = now - due
        busy = self.answered != self._answered_then or bool(self._in_hand)
        self.sample_answer_rate(now)
        after = TICK_S if busy else IDLE_TICK_S  # idle, the loop's lag is not a queue's
        self._timer = loop.call_at(now + after, self._tick, loop, now + after)

    def sample_answer_rate(self, now: float) -> None:
        """Fold the answers since the last sample into ``answer_rate``; an idle stretch (no answer,
        nothing in hand) leaves it as it was, so the next burst is judged by the rate of the last one."""
        if self._sampled_at is not None and now > self._sampled_at:
            answers = self.answered - self._answered_then
            if answers or self._in_hand:
                elapsed = now - self._sampled_at
                weight = min(1.0, elapsed / RATE_WINDOW_S)
                self.answer_rate += weight * (answers / elapsed - self.answer_rate)
        self._sampled_at, self._answered_then = now, self.answered

    def expected_wait_s(self, in_flight: int) -> float:
        """How long ``in_flight`` requests take at the recent answer rate (0 before any answer)."""
        return in_flight / self.answer_rate if self.answer_rate > 0.0 else 0.0

    def read(self, now: float, request: Answering) -> None:
        """An inference request was read whole at ``now``: it is in the service until answered. The
        answered ones at the head leave first (``refuse`` asks for the oldest only with many requests in
        hand: without this, every request answered under a light load stayed here, with its request)."""
        self._drop_answered()
        self._in_hand.append((now, request))

    @property
    def in_hand(self) -> int:
        """Inference requests the watch holds: those in hand, and answered ones behind an older one."""
        return len(self._in_hand)

    def oldest_s(self, now: float) -> float:
        """How long the oldest inference request in hand has been in the service (0 with none)."""
        self._drop_answered()
        return now - self._in_hand[0][0] if self._in_hand else 0.0

    def _drop_answered(self) -> None:
        in_hand = self._in_hand
        while in_hand and (in_hand[0][1].response_complete or in_hand[0][1].disconnected):
            in_hand.popleft()

    def refuse(self, waited_s: float, now: float, in_flight: int, sheddable: bool) -> bool:
        """A request's headers were read at ``now`` (loop clock), ``waited_s`` after its bytes reached the
        host, with ``in_flight`` requests in hand: whether to refuse it (only a ``sheddable`` one) now."""
        late = in_flight >= self.min_in_flight and (
            max(waited_s, self.loop_lag_s, self.oldest_s(now), self.expected_wait_s(in_flight)) > self.target_s
        )
        if late:
            self._below_since = None
            if self._above_since is None:
                self._above_since = now
                self._read_waits.restart(now)
            if not self.overloaded:  # once overloaded, the trend is not asked again until the delay falls under
                self._read_waits.add(now, waited_s)
                self.overloaded = now - self._above_since >= self.interval_s or self._reads_falling_behind(now)
        else:
            self._above_since = None
            if self._below_since is None:
                self._below_since = now
            elif self.overloaded and now - self._below_since >= self.interval_s:
                self.overloaded = False
        if late and sheddable and self.overloaded:
            self.refused += 1
            return True
        return False

    def _reads_falling_behind(self, now: float) -> bool:
        """The delay has stood above the target for part of the interval, and the waits to be read rose."""
        trend = self._read_waits
        rising = (
            now - self._above_since >= EARLY_FRACTION * self.interval_s
            and trend.count >= MIN_TREND_READS
            and trend.slope() >= RISING_SLOPE
        )
        self.early_turns += rising
        return rising


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

    @property
    def waiting(self) -> int:
        """Takers waiting for their share."""
        return len(self._waiting)

    def release(self, size: int) -> None:
        self.used -= size
        while self._waiting and self.used + self._waiting[0][0] <= self.capacity:
            size, granted = self._waiting.popleft()
            if not granted.done():
                self.used += size
                granted.set_result(None)
