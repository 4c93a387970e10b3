"""An open-loop HTTP load generator: requests leave on a schedule, whatever the server does.

Send times are fixed in advance (constant spacing, or Poisson arrivals with exponential gaps) and each
request's latency is measured from its **intended** send time, not from when a connection became
free, so a server that stalls is charged for every request that should have gone out meanwhile
(no coordinated omission). Requests go over persistent HTTP/1.1 connections written and read with
asyncio streams (no HTTP client library in the measured path); a pool of ``connections`` workers
takes due requests from a queue. Latencies go into an HDR-style histogram.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
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
    """Offer ``rate`` requests/s for ``duration_s``, cycling through ``bodies``."""
    loop = asyncio.get_running_loop()
    payloads = [request_bytes(host, path, body) for body in bodies]
    times = schedule(rate, duration_s, arrivals, seed)
    result = LoadResult(offered_rps=len(times) / duration_s, duration_s=duration_s)
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def worker() -> None:
        reader = writer = None
        while True:
            intended, payload = await due.get()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(payload)
                status = await asyncio.wait_for(_read_response(reader), timeout_s)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                result.statuses["error"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            finally:
                due.task_done()
            result.statuses[status] += 1
            if status == 200:
                result.ok += 1
                result.histogram.record((loop.time() - intended) * 1e6)
            else:
                result.refused.record((loop.time() - intended) * 1e6)

    workers = [loop.create_task(worker()) for _ in range(connections)]
    start = loop.time() + 0.01
    i = 0
    while i < len(times):
        now = loop.time()
        while i < len(times) and start + times[i] <= now:
            due.put_nowait((start + times[i], payloads[i % len(payloads)]))
            i += 1
            result.sent += 1
        if i < len(times):
            await asyncio.sleep(max(0.0, start + times[i] - loop.time()))
    try:
        await asyncio.wait_for(due.join(), timeout_s)
    except TimeoutError:
        result.statuses["unanswered"] += due.qsize()
    result.elapsed_s = loop.time() - start
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return result
