"""``ctr bench harden``: the service tried as an operator would, one case at a time (docs/serving.md).

Each case runs a fresh ``ctr serve`` process on loopback and reports what clients saw:

- ``overload``: with the server pinned to one CPU and the load generator to another (so neither
  starves the other: on a shared core the generator fell seconds behind its own schedule), the
  sustainable rate of 10-candidate requests (the highest open-loop rate answered all 200, on pace),
  then twice that rate, then half of it: the statuses, how fast refusals came, the slowest answer,
  and how far the generator lagged its schedule;
- ``pauses``: half the closed-loop rate of the same requests, with the server process paused
  (SIGSTOP, then SIGCONT) for ``PAUSE_MS`` every ``PAUSE_EVERY_S``, as a host that gives the core to
  another guest for a while, or a long collection, pauses it: a stall, not a queue, so every request
  should be answered 200, a little late (the door's interval, ``CTR_SHED_INTERVAL_MS``, is what tells
  the two apart);
- ``drain``: SIGTERM under steady keep-alive load: requests answered, never sent (refused
  connections after the listener closed), and sent but left without a response; time to exit;
- ``slow_clients``: connections that send half a header and stall: how long until the server closed
  each, and the health route's latency meanwhile;
- ``large_bodies``: concurrent invalid ~3.9 MB V2 infer bodies: answers, their latency, and the
  server's resident memory before, at its peak and after.

The tests in tests/integration/test_hardening.py run the same functions at a small scale and assert
on what they return; this command runs them at the scale of the issue and prints a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from clients.bench.loadgen import run_load
from clients.bench.machine import steal_pct_since, steal_seconds
from clients.bench.overload_connections import CONNECTIONS, WARM_CONNECTIONS


@dataclass
class Outcomes:
    """What clients saw: status counts, answer latencies (ms), and requests left without an answer."""

    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def rss_mb(pid: int) -> float:
    """The process's resident set size (Linux /proc), in MB."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- overload ----------------------------------------------------------------------------------------


# the clients close a connection left idle this long, as pooled clients do (undici's default is 4 s), under
# the 5 s the service advertises (``Keep-Alive: timeout=5``) and the 10 s a new connection may wait for its
# first request: with no such limit, warm connections the generator had not used were closed by the server
# at 10 s, just as the step's last requests reached for them (1-28 requests lost in 9 of 18 ladder runs, of
# both the service on ASGI and the direct route: docs/serving-log.md, "Requests lost at a step's end"). None: never.
CLIENT_IDLE_S = 4.0


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` (0: this one) onto ``cpus`` (Linux; threads started later inherit)."""
    tasks = Path(f"/proc/{pid or os.getpid()}/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.exists() else [pid]:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)


def pinned_apart(server_pid: int) -> bool:
    """The server on CPU 0 and this process (the load generator) on CPU 1, so neither starves the other;
    False where there are fewer than two CPUs (nothing pinned)."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return False
    first, second = sorted(os.sched_getaffinity(0))[:2]
    pin(server_pid, {first})
    pin(0, {second})
    return True


def unpin() -> None:
    """This process back on every CPU (after ``pinned_apart``)."""
    pin(0, set(range(os.cpu_count() or 1)))


def offer(
    port: int,
    body: bytes,
    rate: float,
    seconds: float,
    connections: int = CONNECTIONS,
    client_idle_s: float | None = CLIENT_IDLE_S,
    warm_connections: int = WARM_CONNECTIONS,
    times: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Offer ``rate`` requests/s open-loop for ``seconds``: the statuses clients saw, how fast the
    refusals and the answers came, the slowest of all, and how far the generator itself lagged
    (``client_idle_s``: loadgen's ``idle_close_s``; ``warm_connections``: opened before the first request;
    ``times``: send times instead of ``rate``'s schedule, as loadgen takes them)."""
    result = asyncio.run(
        run_load(
            "127.0.0.1",
            port,
            "/v1/score",
            [body],
            rate,
            seconds,
            connections=connections,
            warm_connections=warm_connections,
            idle_close_s=client_idle_s,
            times=times,
        )
    )
    non_ok = sum(n for s, n in result.statuses.items() if s != 200)
    slowest = max(result.histogram.max_us if result.ok else 0, result.refused.max_us if non_ok else 0) / 1000
    return {
        "offered_rps": round(rate, 1),
        "sent": result.sent,
        "achieved_rps": round(result.achieved_rps, 1),
        "statuses": {str(k): v for k, v in sorted(result.statuses.items(), key=str)},
        "share_503_of_non_200": round(result.statuses[503] / non_ok, 3) if non_ok else None,
        "non_200_p99_ms": round(result.refused.percentile(99) / 1000, 2) if non_ok else None,
        "non_200_p99_from_sent_ms": round(result.refused_after_send.percentile(99) / 1000, 2) if non_ok else None,
        "ok_p99_ms": round(result.histogram.percentile(99) / 1000, 2) if result.ok else None,
        "slowest_ms": round(slowest, 1),
        "generator_lag_p99_ms": round(result.send_lag.percentile(99) / 1000, 2),
        "failures": dict(result.failures),  # the "error" statuses by cause
        "closed_under_free_s_after_s_answers": [
            [round(free_s, 4), round(after_s, 4), answers] for free_s, after_s, answers in result.closed_under
        ],
    }


def closed_loop_rps(port: int, body: bytes, seconds: float, connections: int = 64) -> float:
    """What ``connections`` clients get sending each request as soon as their last one is answered
    (offered far more than that, they never wait for the schedule)."""
    result = asyncio.run(run_load("127.0.0.1", port, "/v1/score", [body], 50_000, seconds, connections=connections))
    return result.achieved_rps


PAUSE_MS = 50.0  # how long each pause of the server lasts: the host stalls seen on the 2-core VM were ~40-50 ms
PAUSE_EVERY_S = 1.5


def paused_load(
    port: int,
    pid: int,
    body: bytes,
    rate: float,
    seconds: float,
    pause_ms: float = PAUSE_MS,
    every_s: float = PAUSE_EVERY_S,
) -> dict[str, Any]:
    """``offer`` at ``rate`` while process ``pid`` is paused (SIGSTOP ... SIGCONT) for ``pause_ms`` every
    ``every_s``: what clients saw, and how many pauses there were."""
    stop = threading.Event()
    pauses = 0

    def pause_now_and_then() -> None:
        nonlocal pauses
        while not stop.wait(every_s):
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(pause_ms / 1000)
            finally:
                os.kill(pid, signal.SIGCONT)
            pauses += 1

    pauser = threading.Thread(target=pause_now_and_then)
    steal_before, started = steal_seconds(), time.monotonic()
    pauser.start()
    try:
        result = offer(port, body, rate, seconds)
    finally:
        stop.set()
        pauser.join()
    # the host's own pauses (% of one CPU given to other guests meanwhile) come on top of these
    steal_pct = steal_pct_since(steal_before, time.monotonic() - started)
    return {"pause_ms": pause_ms, "pauses": pauses, "host_steal_pct": steal_pct, **result}


def pauses_case(port: int, pid: int, body: bytes, seconds: float) -> dict[str, Any]:
    """Half the closed-loop rate (well within what the server sustains), with the server paused now and
    then: every request should be answered 200."""
    closed = closed_loop_rps(port, body, min(seconds, 3.0))
    time.sleep(1.0)
    return {"closed_loop_64_rps": round(closed, 1), **paused_load(port, pid, body, closed / 2, seconds)}


def sustainable(
    port: int,
    body: bytes,
    start_rps: float,
    seconds: float,
    growth: float = 1.15,
    client_idle_s: float | None = CLIENT_IDLE_S,
    warm_connections: int = WARM_CONNECTIONS,
) -> tuple[float, list]:
    """The sustainable rate: the highest of rates rising by ``growth`` from ``start_rps`` at which every
    request offered open-loop was answered 200 and the answers kept pace (achieved >= 95% of offered, or of
    what was sent where a short step's whole requests fall short of it).
    Where ``start_rps`` itself is not sustained, the rates fall by ``growth`` until one is."""
    rate, best, steps, falling = start_rps, 0.0, [], False
    for _ in range(20):
        step = offer(port, body, rate, seconds, client_idle_s=client_idle_s, warm_connections=warm_connections)
        steps.append(step)
        time.sleep(1.0)  # let the queues empty before the next step
        # paced against what was sent: a short step's whole requests fall short of rate * seconds (9.5 req/s for
        # 0.5 s sends 4, at best 8.0 req/s), so a ladder falling that low could never find a rate all answered
        paced = step["sent"] > 0 and step["achieved_rps"] >= 0.95 * min(rate, step["sent"] / seconds)
        sustained = step["statuses"] == {"200": sum(step["statuses"].values())} and paced
        if sustained:
            best = rate
            if falling:
                break
            rate *= growth
        elif best:
            break
        else:
            falling = True
            rate /= growth
    if not best:
        raise RuntimeError(f"no rate from {start_rps:.0f} down to {rate * growth:.0f} req/s was all 200: {steps}")
    return best, steps


FAILURE_KEYS = ("failures", "closed_under_free_s_after_s_answers")
LADDER_KEYS = ("offered_rps", "achieved_rps", "statuses", "ok_p99_ms", *FAILURE_KEYS)  # failures when there are


def overload_case(
    port: int,
    pid: int,
    body: bytes,
    seconds: float,
    sustainable_rps: float | None = None,
    client_idle_s: float | None = CLIENT_IDLE_S,
    warm_connections: int = WARM_CONNECTIONS,
) -> dict[str, Any]:
    """The row of the issue: the sustainable rate (pinned), then twice it, then half of it. A given
    ``sustainable_rps`` is taken as it is (no ladder): runs of different settings at the same rates.
    ``client_idle_s``: when the clients close an idle connection (None: never, the old generator);
    ``warm_connections``: how many clients hold a connection open before each step."""
    pinned = pinned_apart(pid)
    try:
        closed = closed_loop_rps(port, body, min(seconds, 3.0))
        time.sleep(1.0)
        if sustainable_rps is None:
            rate, ladder = sustainable(
                port, body, 0.6 * closed, seconds, client_idle_s=client_idle_s, warm_connections=warm_connections
            )
        else:
            rate, ladder = sustainable_rps, []
        steps = {}
        for name, factor in (("2x", 2.0), ("0.5x", 0.5)):
            steps[name] = offer(
                port, body, factor * rate, seconds, client_idle_s=client_idle_s, warm_connections=warm_connections
            )
            time.sleep(1.0)
    finally:
        if pinned:
            unpin()
    return {
        "pinned": pinned,
        "closed_loop_64_rps": round(closed, 1),
        "sustainable_rps": round(rate, 1),
        "client_idle_s": client_idle_s,
        "warm_connections": warm_connections,
        "ladder": [{k: step[k] for k in LADDER_KEYS if step[k] or k not in FAILURE_KEYS} for step in ladder],
        **steps,
    }


# -- drain -------------------------------------------------------------------------------------------


def steady_clients(
    port: int, body: bytes, clients: int, stop: threading.Event, pause_s: float = 0.02
) -> tuple[Counter, list[threading.Thread]]:
    """``clients`` threads, each sending requests on one keep-alive connection (a new one when the
    server closes it), pausing up to ``pause_s`` between them (so connections are idle at times, as
    under real traffic), until ``stop``; outcomes: status, "unsent" (connection refused) or
    "no_response" (sent, then the connection closed without an answer)."""
    outcomes: Counter = Counter()
    lock = threading.Lock()
    headers = {"content-type": "application/json"}

    def loop() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            try:
                connection.connect() if connection.sock is None else None
            except OSError:
                with lock:
                    outcomes["unsent"] += 1
                time.sleep(0.01)
                continue
            try:
                connection.request("POST", "/v1/score", body=body, headers=headers)
                reply = connection.getresponse()
                reply.read()
                outcome: Any = reply.status
                if reply.getheader("connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException):
                outcome = "no_response"
                connection.close()
            with lock:
                outcomes[outcome] += 1
            time.sleep(random.uniform(0, pause_s))
        connection.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return outcomes, threads


def exited(pid: int) -> bool:
    """Whether the (child) process has exited: gone, or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return True


def drain(pid: int, port: int, body: bytes, clients: int, load_s: float, timeout_s: float = 60) -> dict[str, Any]:
    """SIGTERM after ``load_s`` of steady load; what the clients saw and how long the exit took."""
    stop = threading.Event()
    outcomes, threads = steady_clients(port, body, clients, stop)
    time.sleep(load_s)
    signalled = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while not exited(pid) and time.monotonic() - signalled < timeout_s:
        time.sleep(0.05)
    exit_s = time.monotonic() - signalled
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    return {
        "clients": clients,
        "pause_ms": 20,
        "outcomes": {str(k): v for k, v in sorted(outcomes.items(), key=str)},
        "no_response": outcomes["no_response"],
        "exited": exited(pid),
        "exit_s": round(exit_s, 2),
    }


def drains_summary(drains: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """Several drains, each of a fresh service: how many left a request without a response, and the sums."""
    outcomes: Counter = Counter()
    for one in drains:
        outcomes.update(one["outcomes"])
    return {
        "workers": workers,
        "clients": drains[0]["clients"],
        "drains": len(drains),
        "drains_with_no_response": sum(one["no_response"] > 0 for one in drains),
        "no_response": outcomes["no_response"],
        "outcomes": dict(sorted(outcomes.items())),
        "all_exited": all(one["exited"] for one in drains),
        "exit_s_max": max(one["exit_s"] for one in drains),
        "no_response_by_drain": [one["no_response"] for one in drains],
    }


# -- slow clients ------------------------------------------------------------------------------------


def slow_clients(url: str, port: int, connections: int, watch_s: float) -> dict[str, Any]:
    """``connections`` that send half a header and stall; when the server closed each, and the health
    route's latency meanwhile (polled every 0.2 s)."""

    async def stall(start: float) -> float | None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return None
        writer.write(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Ty")
        try:
            while await asyncio.wait_for(reader.read(4096), start + watch_s - time.monotonic()):
                pass
            return time.monotonic() - start
        except (TimeoutError, OSError):
            return None
        finally:
            writer.close()

    async def health(start: float, done: asyncio.Event) -> list[float]:
        # a connection a probe, as a load balancer's health check opens: on one kept alive, a probe was once sent
        # as the server closed it, the keep-alive race ("Server disconnected without sending a response", a
        # loaded make test, stop 62), which says nothing of whether health answers
        latencies = []
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            while not done.is_set() and time.monotonic() - start < watch_s:
                t0 = time.monotonic()
                await client.get(f"{url}/v2/health/live")
                latencies.append((time.monotonic() - t0) * 1000)
                await asyncio.sleep(0.2)
        return latencies

    async def main() -> tuple[list[float | None], list[float]]:
        start = time.monotonic()
        done = asyncio.Event()
        stalls = asyncio.gather(*(stall(start) for _ in range(connections)))
        probe = asyncio.ensure_future(health(start, done))
        closed = await stalls
        done.set()
        return closed, await probe

    closed, health_ms = asyncio.run(main())
    times = [t for t in closed if t is not None]
    return {
        "connections": connections,
        "closed_by_server": len(times),
        "still_open_after_s": watch_s if len(times) < connections else None,
        "last_closed_s": round(max(times), 2) if times else None,
        "health_max_ms": round(max(health_ms), 1) if health_ms else None,
        "health_probes": len(health_ms),
    }


# -- large invalid bodies ----------------------------------------------------------------------------


def invalid_infer_body(target_bytes: int) -> bytes:
    """A V2 infer body of about ``target_bytes`` whose data do not match its shape (400)."""
    values = ",".join(["0.123456"] * (target_bytes // 9))
    return ('{"inputs": [{"name": "numeric", "datatype": "FP32", "shape": [1, 2], "data": [' + values + "]}]}").encode()


def large_bodies(url: str, pid: int, model: str, bodies: int, body_bytes: int) -> dict[str, Any]:
    """``bodies`` concurrent invalid V2 infer bodies of ``body_bytes``: answers and resident memory."""
    payload = invalid_infer_body(body_bytes)
    before = rss_mb(pid)
    peak = before
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not sampling.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    outcomes = Outcomes()

    async def one(client: httpx.AsyncClient) -> None:
        t0 = time.monotonic()
        try:
            reply = await client.post(
                f"{url}/v2/models/{model}/infer", content=payload, headers={"content-type": "application/json"}
            )
            outcomes.statuses[reply.status_code] += 1
        except httpx.HTTPError:
            outcomes.statuses["error"] += 1
        outcomes.latencies_ms.append((time.monotonic() - t0) * 1000)

    async def main() -> None:
        limits = httpx.Limits(max_connections=bodies)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await asyncio.gather(*(one(client) for _ in range(bodies)))

    asyncio.run(main())
    time.sleep(2.0)
    sampling.set()
    sampler.join()
    return {
        "bodies": bodies,
        "body_mb": round(len(payload) / 1e6, 2),
        "statuses": {str(k): v for k, v in sorted(outcomes.statuses.items(), key=str)},
        "p50_ms": round(outcomes.percentile(50), 1),
        "p99_ms": round(outcomes.percentile(99), 1),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_after_mb": round(rss_mb(pid), 1),
    }


def table(report: dict[str, Any]) -> str:
    """The report as lines of ``case: key=value ...``."""
    lines = []
    for case, result in report["cases"].items():
        parts = result if isinstance(result, list) else [result]
        for part in parts:
            lines.append(f"{case:<14}" + "  ".join(f"{k}={json.dumps(v)}" for k, v in part.items()))
    return "\n".join(lines)
