"""Where the service's time goes at one fixed rate: its threads, the model's batches, the host's CPU.

One `ctr serve` (this checkout's service, or ``--service-root``'s), warmed up for 2 s, then open-loop load
of ``--candidates``-candidate bodies at ``--rate`` for ``--seconds``. Printed:

- the host's CPU split over that time, in cores (``/proc/stat``: user, system, idle, steal, ...);
- the server's (each worker's) two busiest threads (the event loop and the model's thread): time on a CPU and time
  runnable but waiting for one, in cores, and context switches per second (``/proc/<pid>/task/*/schedstat``);
  a thread neither on a CPU nor waiting for one is asleep: idle, or waiting for the GIL;
- the load generator's CPU (this process);
- the model's batches from the V2 statistics (``model_runs``): how many, the share of the time a batch
  was running as the batcher saw it, and per item (candidate) that batch time against the model's thread's CPU time;
- the step's statuses and latency percentiles.

    PYTHONPATH=. python reports/thread_occupancy.py --candidates 100 --rate 850 [--service-root OTHER] [--workers 2]

With ``--workers`` (``CTR_WORKERS``) each worker's two threads are listed, with the connections it held
halfway through the load; the batches are those of all workers (the statistics sum them).

Used in docs/serving-log.md, "The model's thread takes its next batch".
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from contextlib import suppress

from clients.bench.loadgen import run_load
from clients.bench.machine import host_cpu_seconds
from clients.bench.serve import model_runs
from reports.fixed_rate import arguments, warmed_service


def thread_schedstats(pid: int) -> dict[str, tuple[float, float, int]]:
    """Thread id -> (seconds on a CPU, seconds runnable and waiting, times scheduled)."""
    stats = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="utf-8") as f:
            on_cpu, waiting, slices = f.read().split()
        stats[tid] = (int(on_cpu) / 1e9, int(waiting) / 1e9, int(slices))
    return stats


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def server_processes(pid: int, workers: int) -> list[int]:
    """The processes that serve: the service itself, or its supervisor's workers."""
    if workers == 1:
        return [pid]
    with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as f:
        return [int(child) for child in f.read().split()]


def connections(pids: list[int], port: int) -> dict[int, int]:
    """Process -> the established TCP connections to ``port`` it holds (Linux's socket tables)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError), open(table, encoding="utf-8") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(fields[9])
    held = {}
    for pid in pids:
        descriptors = os.listdir(f"/proc/{pid}/fd")
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in descriptors]
        held[pid] = sum(link[len("socket:[") : -1] in established for link in links if link.startswith("socket:["))
    return held


def main() -> None:
    args = arguments(__doc__.splitlines()[0], candidates=100, rate=850.0, seconds=8.0)
    with warmed_service(args) as (port, pid, bodies):
        pids = server_processes(pid, args.workers)
        before = (host_cpu_seconds(), *map(thread_schedstats, pids), time.process_time())
        runs_before = model_runs(port)[args.model]
        mid_run: dict[int, int] = {}
        sampler = threading.Timer(args.seconds / 2, lambda: mid_run.update(connections(pids, port)))
        sampler.start()
        started = time.monotonic()
        result = asyncio.run(run_load("127.0.0.1", port, "/v1/score", bodies, args.rate, args.seconds))
        wall = time.monotonic() - started
        sampler.join()
        after = (host_cpu_seconds(), *map(thread_schedstats, pids), time.process_time())
        runs_after = model_runs(port)[args.model]
    counters = {name: runs_after[name] - value for name, value in runs_before.items()}
    host = {name: (after[0][name] - seconds) / wall for name, seconds in before[0].items()}
    say("host, cores: " + ", ".join(f"{name} {value:.2f}" for name, value in host.items() if value >= 0.005))
    model_cpu = 0.0
    for index, server_pid in enumerate(pids):
        was, now = before[1 + index], after[1 + index]
        process = "server" if args.workers == 1 else f"worker {index} ({mid_run.get(server_pid, 0)} connections)"
        threads = sorted(now, key=lambda tid: was.get(tid, (0.0, 0.0, 0))[0] - now[tid][0])[:2]
        for tid in threads:
            (cpu0, wait0, n0), (cpu1, wait1, n1) = was.get(tid, (0.0, 0.0, 0)), now[tid]
            role = "event loop" if tid == str(server_pid) else "model's thread"
            model_cpu += (cpu1 - cpu0) if role == "model's thread" else 0.0
            say(
                f"{process} {role:<15} on a CPU {(cpu1 - cpu0) / wall:.2f}, runnable waiting"
                f" {(wait1 - wait0) / wall:.2f} cores; {(n1 - n0) / wall:.0f} switches/s"
            )
    say(f"generator: {(after[-1] - before[-1]) / wall:.2f} cores")
    batches, items, batch_s = counters["runs"], counters["items"], counters["compute_s"]
    say(
        f"batches: {batches:.0f}, {items / max(batches, 1):.0f} items each; a batch running {batch_s / wall:.2f} of"
        f" the time; per item: batch time {batch_s / items * 1e6:.2f} µs, model's thread CPU"
        f" {model_cpu / items * 1e6:.2f} µs"
    )
    step = result.to_dict(args.candidates)
    say(str({key: step[key] for key in ("offered_rps", "achieved_rps", "statuses", "p50_ms", "p90_ms", "p99_ms")}))


if __name__ == "__main__":
    main()
