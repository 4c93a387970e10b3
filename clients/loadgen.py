"""An open-loop HTTP load generator: requests leave on a schedule, whatever the server does.

Send times are fixed in advance (constant spacing, or Poisson arrivals with exponential gaps) and each
request's latency is measured from its **intended** send time, not from when a connection became
free, so a server that stalls is charged for every request that should have gone out meanwhile
(no coordinated omission). Requests go over persistent HTTP/1.1 connections written and read with
asyncio streams (no HTTP client library in the measured path), at most ``connections`` of them, opened
as requests need them. Latencies go into HDR-style histograms; so does the generator's own lag (due ->
written), which tells a server that is slow to answer from a generator that is slow to send.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from dataclasses import dataclass, field

from clients.histogram import LatencyHistogram


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


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
        elif line[:18].lower() == b"transfer-encoding:" and b"chunked" in line.lower():
            chunked = True  # e.g. Ray Serve's proxy streams its answers (ctr bench peers)
    if chunked:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # the empty trailer
    elif length:
        await reader.readexactly(length)
    return status


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
) -> LoadResult:
    """Offer ``rate`` requests/s for ``duration_s``, cycling through ``bodies``, over at most
    ``connections`` connections at once.

    A due request takes the connection that became free last (so a server that keeps up is offered few,
    warm connections), opens a new one while fewer than ``connections`` are open (as independent
    clients would), and otherwise waits for one in arrival order: that wait is the generator's, not
    the server's, and is recorded apart (``send_lag``) with its own time behind schedule.
    """
    loop = asyncio.get_running_loop()
    payloads = [request_bytes(host, path, body) for body in bodies]
    times = schedule(rate, duration_s, arrivals, seed)
    result = LoadResult(offered_rps=len(times) / duration_s, duration_s=duration_s)
    pool = _Pool(host, port, connections)
    in_flight: set[asyncio.Task] = set()

    async def one(intended: float, payload: bytes) -> None:
        try:
            stream = await pool.take()
        except OSError:
            result.statuses["error"] += 1
            return
        written = loop.time()
        result.send_lag.record((written - intended) * 1e6)
        reader, writer = stream
        try:
            writer.write(payload)
            status = await asyncio.wait_for(_read_response(reader), timeout_s)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            result.statuses["error"] += 1
            pool.discard(stream)
            return
        pool.give_back(stream)
        result.statuses[status] += 1
        if status == 200:
            result.ok += 1
            result.histogram.record((loop.time() - intended) * 1e6)
        else:
            result.refused.record((loop.time() - intended) * 1e6)
            result.refused_after_send.record((loop.time() - written) * 1e6)

    start = loop.time() + 0.01
    i = 0
    while i < len(times):
        now = loop.time()
        while i < len(times) and start + times[i] <= now:
            task = loop.create_task(one(start + times[i], payloads[i % len(payloads)]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            i += 1
            result.sent += 1
        if i < len(times):
            await asyncio.sleep(max(0.0, start + times[i] - loop.time()))
    if in_flight:
        _, late = await asyncio.wait(set(in_flight), timeout=timeout_s + 1.0)
        if late:
            result.statuses["unanswered"] += len(late)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    result.elapsed_s = loop.time() - start
    pool.close()
    return result


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Pool:
    """At most ``limit`` keep-alive connections: the most recently freed first, new ones on demand."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.open = 0
        self.idle: list[Stream] = []
        self.waiting: deque[asyncio.Future] = deque()

    async def take(self) -> Stream:
        while True:
            if self.idle:
                return self.idle.pop()
            if self.open < self.limit:
                self.open += 1
                try:
                    return await asyncio.open_connection(self.host, self.port)
                except OSError:
                    self.open -= 1
                    self._hand_over(None)
                    raise
            freed: asyncio.Future = asyncio.get_running_loop().create_future()
            self.waiting.append(freed)
            stream = await freed
            if stream is not None:
                return stream  # else one was closed: open a new one

    def give_back(self, stream: Stream) -> None:
        if not self._hand_over(stream):
            self.idle.append(stream)

    def discard(self, stream: Stream) -> None:
        stream[1].close()
        self.open -= 1
        self._hand_over(None)

    def _hand_over(self, stream: Stream | None) -> bool:
        """To the oldest waiter: a freed connection, or None (room to open one)."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(stream)
                return True
        return False

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
