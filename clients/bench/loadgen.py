"""An open-loop HTTP load generator: requests leave on a schedule, whatever the server does.

Send times are fixed in advance (constant spacing, or Poisson arrivals with exponential gaps) and each
request's latency is measured from its **intended** send time, not from when a connection became
free, so a server that stalls is charged for every request that should have gone out meanwhile
(no coordinated omission). Requests go over persistent HTTP/1.1 connections, at most ``connections``
of them, opened as requests need them; each is an asyncio protocol that parses its answers as the bytes
come (no HTTP client library, stream reader, task or timer per request: send times are loop callbacks
and one sweep finds answers overdue). The generator shares the benchmark machine's CPU with the server,
so its own cost per request counts: with stream readers and a task per request it took 33-82 µs of CPU
per request, now 24-49 µs (``ctr bench loadgen``; docs/serving.md, "The load generator"). Latencies go
into HDR-style histograms; so does the generator's own lag (due -> written), which tells a server that
is slow to answer from a generator that is slow to send.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from clients.bench.histogram import LatencyHistogram

# after opening warm connections: the server accepting 512 at once took tens of ms of its loop, and the
# first requests of an overload test's half-rate step found a standing queue there (7 of 13,882 refused)
WARM_SETTLE_S = 0.5
CLOSED_UNDER_KEPT = 50


@dataclass
class LoadResult:
    offered_rps: float
    duration_s: float
    elapsed_s: float = 0.0  # from the first intended send to the last answer
    sent: int = 0
    ok: int = 0
    statuses: Counter = field(default_factory=Counter)  # status code (or "error"/"unsent") -> count
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)  # successful requests, µs
    refused: LatencyHistogram = field(default_factory=LatencyHistogram)  # answers other than 200, µs
    send_lag: LatencyHistogram = field(default_factory=LatencyHistogram)  # intended send -> written, µs
    refused_after_send: LatencyHistogram = field(default_factory=LatencyHistogram)  # non-200s from written, µs
    failures: Counter = field(default_factory=Counter)  # why requests got no answer -> count ("error" statuses)
    # the first CLOSED_UNDER_KEPT requests whose connection closed under them: (how long the connection was
    # free before the request was written, s; how long after the write it closed, s; answers it gave before)
    closed_under: list[tuple[float, float, int]] = field(default_factory=list)

    @property
    def achieved_rps(self) -> float:
        return self.ok / max(self.duration_s, self.elapsed_s)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def to_dict(self, items_per_request: int) -> dict:
        return {
            "offered_rps": round(self.offered_rps, 1),
            "achieved_rps": round(self.achieved_rps, 1),
            "candidates_per_s": round(self.achieved_rps * items_per_request, 1),
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)},
            **self.histogram.summary_ms(),
        }


def request_bytes(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def schedule(rate: float, duration_s: float, arrivals: str, seed: int = 0) -> list[float]:
    """Intended send times (seconds from the start)."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    if arrivals == "constant":
        return [i / rate for i in range(int(rate * duration_s))]
    if arrivals != "poisson":
        raise ValueError(f"arrivals must be constant or poisson, not {arrivals!r}")
    rng = random.Random(seed)
    times, t = [], rng.expovariate(rate)
    while t < duration_s:
        times.append(t)
        t += rng.expovariate(rate)
    return times


def burst_schedule(rate: float, duration_s: float, burst_rate: float, burst_at_s: float, burst_s: float) -> list[float]:
    """``rate``'s constant schedule over ``duration_s``, with ``burst_rate`` more requests a second from
    ``burst_at_s`` for ``burst_s`` (the burst's own constant schedule, merged in)."""
    burst = [burst_at_s + t for t in schedule(burst_rate, burst_s, "constant")]
    return sorted(schedule(rate, duration_s, "constant") + burst)


async def read_response(reader: asyncio.StreamReader) -> int:
    """The status of the next whole response on a stream (one request in flight on it: nothing after the
    response is read), parsed by ``complete_response``."""
    buffer = bytearray()
    while (answer := complete_response(buffer)) is None:
        data = await reader.read(65536)
        if not data:
            raise asyncio.IncompleteReadError(bytes(buffer), None)
        buffer += data
    return answer[0]


async def run_load(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    rate: float,
    duration_s: float,
    arrivals: str = "constant",
    connections: int = 64,
    timeout_s: float = 5.0,
    seed: int = 0,
    warm_connections: int = 0,
    idle_close_s: float | None = None,
    times: Sequence[float] | None = None,
) -> LoadResult:
    """Offer ``rate`` requests/s for ``duration_s``, cycling through ``bodies``, over at most
    ``connections`` connections at once.

    A due request takes the connection that became free last (so a server that keeps up is offered few,
    warm connections), otherwise waits for one in arrival order while a new one is opened if fewer than
    ``connections`` are open (as independent clients would): that wait is the generator's, not the
    server's, and is recorded apart (``send_lag``) with its own time behind schedule. An answer not
    complete ``timeout_s`` after its request was written is an error, and its connection is closed.

    ``warm_connections`` are opened before the first send (clients that hold persistent connections,
    as ad servers do), and the server is given ``WARM_SETTLE_S`` to take them in: opening one is not
    part of any request's time, and the first requests do not queue behind the server's accepts.

    ``idle_close_s``: a connection left free this long is closed by the generator, as a client pool
    with an idle time-out does (undici's default is 4 s, under the ``Keep-Alive: timeout=5`` the service
    advertises); None keeps it until the server closes it, and a request sent just as the server does
    is lost (the keep-alive race: docs/serving-log.md).

    ``times``: the intended send times (seconds from the start) instead of ``rate``'s schedule (e.g.
    ``burst_schedule``); ``rate`` and ``duration_s`` then only describe them.
    """
    loop = asyncio.get_running_loop()
    payloads = [request_bytes(host, path, body) for body in bodies]
    times = schedule(rate, duration_s, arrivals, seed) if times is None else times
    result = LoadResult(offered_rps=len(times) / duration_s, duration_s=duration_s)
    pool = _Pool(loop, host, port, connections, result)
    if warm_connections:
        await pool.warm(min(warm_connections, connections))
        await asyncio.sleep(WARM_SETTLE_S)
    sweep = _TimeoutSweep(loop, pool, timeout_s, idle_close_s)
    start = loop.time() + 0.01
    dispatched = loop.create_future()
    i = 0

    def send_due() -> None:  # a loop callback at each send time: no task or future per wake-up
        nonlocal i, timer
        now = loop.time()
        while i < len(times) and start + times[i] <= now:
            pool.dispatch(start + times[i], payloads[i % len(payloads)])
            i += 1
        if i < len(times):
            timer = loop.call_at(start + times[i], send_due)
        elif not dispatched.done():
            dispatched.set_result(None)

    timer = loop.call_at(start, send_due)
    try:
        await dispatched
        result.sent = i
        unanswered = await pool.settled(timeout_s + 1.0)
        if unanswered:
            result.statuses["unanswered"] += unanswered
        result.elapsed_s = loop.time() - start
    finally:
        timer.cancel()
        sweep.stop()
        pool.close()
    return result


def complete_response(buffer: bytearray) -> tuple[int, int, bool] | None:
    """(status, length in bytes, whether the connection stays open) of the HTTP/1.1 response at the
    start of ``buffer``, once it is all there: its body by Content-Length, or every chunk of a chunked
    one (Ray Serve's proxy streams its answers); None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end])
    status = int(head[9:12])
    length, chunked, keep_alive = 0, False, True
    for line in head.split(b"\r\n")[1:]:
        name = line[:18].lower()
        if name.startswith(b"content-length:"):
            length = int(line[15:])
        elif name == b"transfer-encoding:" and b"chunked" in line.lower():
            chunked = True
        elif name.startswith(b"connection:") and b"close" in line.lower():
            keep_alive = False
    position = end + 4
    if not chunked:
        return (status, position + length, keep_alive) if len(buffer) >= position + length else None
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        if size == 0:  # the last chunk, then the empty trailer line
            trailer_end = buffer.find(b"\r\n", position)
            return (status, trailer_end + 2, keep_alive) if trailer_end >= 0 else None
        position += size + 2
        if position > len(buffer):
            return None


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed from the bytes as they come
    (no stream reader, no task and no timer per request: the generator's own cost per request is what
    bounds the rate it can offer on one core)."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.request: tuple[float, float] | None = None  # (intended, written) of the request in flight
        self.free_since = pool.loop.time()  # when it was opened or last answered
        self.answers = 0  # answers it has given

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, intended: float, written: float, payload: bytes) -> None:
        self.request = (intended, written)
        assert self.transport is not None
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.request is None:
            return
        try:
            answer = complete_response(self.buffer)
        except ValueError:  # not HTTP: the request fails, the connection goes
            self.pool.failed(self, "not HTTP")
            return
        if answer is not None:
            status, length, keep_alive = answer
            del self.buffer[:length]
            request, self.request = self.request, None
            if not keep_alive:  # the server closes it: never reused
                self.transport.close()  # type: ignore[union-attr]
            self.pool.answered(self, request, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self)


class _Pool:
    """At most ``limit`` keep-alive connections: the most recently freed first, new ones on demand; the
    outcome of every request dispatched goes into ``result``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, limit: int, result: LoadResult) -> None:
        self.loop, self.host, self.port, self.limit, self.result = loop, host, port, limit, result
        self.open = 0  # connections open or being opened
        self.opening = 0
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.waiting: deque[tuple[float, bytes]] = deque()  # (intended, payload), in arrival order
        self.unsettled = 0  # dispatched, not yet answered or failed
        self._all_settled: asyncio.Future | None = None
        self._openers: set[asyncio.Task] = set()

    def dispatch(self, intended: float, payload: bytes) -> None:
        self.unsettled += 1
        if self.idle and not self.waiting:
            self._send(self.idle.pop(), intended, payload)
            return
        self.waiting.append((intended, payload))
        self._open_for_waiting()

    def _open_for_waiting(self) -> None:
        """Open one more connection while requests wait, fewer are being opened than wait, and there is room."""
        if self.waiting and self.open < self.limit and self.opening < len(self.waiting):
            self.open += 1
            self.opening += 1
            task = self.loop.create_task(self._open())
            self._openers.add(task)
            task.add_done_callback(self._openers.discard)

    async def warm(self, count: int) -> None:
        """Open ``count`` connections and keep them idle (those that fail are not retried)."""
        opened = await asyncio.gather(
            *(self.loop.create_connection(lambda: _Connection(self), self.host, self.port) for _ in range(count)),
            return_exceptions=True,
        )
        for outcome in opened:
            if not isinstance(outcome, BaseException):
                self.open += 1
                self.idle.append(outcome[1])

    async def _open(self) -> None:
        try:
            _, connection = await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError:
            self.opening -= 1
            self.open -= 1
            if self.waiting:  # the oldest waiting request fails with the connection it waited for
                self.waiting.popleft()
                self.result.failures["connect failed"] += 1
                self._settle("error")
            self._open_for_waiting()  # the others try again
            return
        self.opening -= 1
        self._free(connection)

    def _send(self, connection: _Connection, intended: float, payload: bytes) -> None:
        written = self.loop.time()
        self.result.send_lag.record((written - intended) * 1e6)
        self.busy.add(connection)
        connection.send(intended, written, payload)

    def _free(self, connection: _Connection) -> None:
        if self.waiting:
            self._send(connection, *self.waiting.popleft())
        else:
            self.idle.append(connection)

    def answered(self, connection: _Connection, request: tuple[float, float], status: int) -> None:
        self.busy.discard(connection)
        now = connection.free_since = self.loop.time()
        connection.answers += 1
        intended, written = request
        result = self.result
        if status == 200:
            result.ok += 1
            result.histogram.record((now - intended) * 1e6)
        else:
            result.refused.record((now - intended) * 1e6)
            result.refused_after_send.record((now - written) * 1e6)
        self._settle(status)
        if connection.transport is not None and not connection.transport.is_closing():
            self._free(connection)

    def failed(self, connection: _Connection, why: str) -> None:
        """The request in flight on ``connection`` failed (time-out, garbage): counted, connection closed."""
        if connection.request is not None:
            connection.request = None
            self.result.failures[why] += 1
            self._settle("error")
        if connection.transport is not None:
            connection.transport.abort()

    def lost(self, connection: _Connection) -> None:
        self.open -= 1
        self.busy.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.request is not None:  # closed under a request: it failed
            written = connection.request[1]
            self.result.failures["closed under a request"] += 1
            if len(self.result.closed_under) < CLOSED_UNDER_KEPT:
                free_s, closed_after_s = written - connection.free_since, self.loop.time() - written
                self.result.closed_under.append((free_s, closed_after_s, connection.answers))
            connection.request = None
            self._settle("error")
        self._open_for_waiting()

    def _settle(self, status: int | str) -> None:
        self.result.statuses[status] += 1
        self.unsettled -= 1
        if not self.unsettled and self._all_settled is not None and not self._all_settled.done():
            self._all_settled.set_result(None)

    async def settled(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for every dispatched request's outcome; how many had none."""
        if self.unsettled:
            self._all_settled = self.loop.create_future()
            await asyncio.wait({self._all_settled}, timeout=timeout_s)
        return self.unsettled

    def close_idle(self, free_before: float) -> None:
        """Close the idle connections free since before ``free_before`` (the idle list is in the order
        they were freed: the oldest first)."""
        stale = 0
        while stale < len(self.idle) and self.idle[stale].free_since < free_before:
            stale += 1
        closing, self.idle[:stale] = self.idle[:stale], []
        for connection in closing:
            if connection.transport is not None:
                connection.transport.close()  # connection_lost counts it closed

    def close(self) -> None:
        for task in self._openers:
            task.cancel()
        for connection in [*self.idle, *self.busy]:
            connection.request = None
            if connection.transport is not None:
                connection.transport.close()
        self.idle.clear()
        self.busy.clear()


class _TimeoutSweep:
    """One timer for every request in flight: each ``timeout_s / 10`` (at most 0.1 s), a request
    written more than ``timeout_s`` ago without a complete answer fails and its connection is closed;
    and, given ``idle_close_s``, connections free for that long are closed."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pool: _Pool, timeout_s: float, idle_close_s: float | None = None
    ) -> None:
        self.loop, self.pool, self.timeout_s, self.idle_close_s = loop, pool, timeout_s, idle_close_s
        self.interval_s = min(timeout_s / 10, 0.1)
        self.handle = loop.call_later(self.interval_s, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        cutoff = now - self.timeout_s
        for connection in [c for c in self.pool.busy if c.request is not None and c.request[1] < cutoff]:
            self.pool.failed(connection, "timed out")
        if self.idle_close_s is not None:
            self.pool.close_idle(now - self.idle_close_s)
        self.handle = self.loop.call_later(self.interval_s, self._sweep)

    def stop(self) -> None:
        self.handle.cancel()
