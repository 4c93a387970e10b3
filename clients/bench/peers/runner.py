"""``ctr bench peers``: the service beside Ray Serve, BentoML and LitServe serving the same model.

Every server scores the same repository model with the same encoder (clients/bench/peers/model.py),
the same request bodies (the world's ``sample_request``, as ``ctr bench serve`` draws them) and the same
open-loop generator (clients/bench/loadgen.py), one after another in one run. For each server and each body
size (1 and 100 candidates):

- a step at a **common rate** (the same offered rate for every server): p50 / p99 and the CPU time per
  answered request of every process of the server (a peer's workers, proxies and cluster daemons
  included), summed and per process, after a short idle spell that measures what those processes
  burn without load (reported beside it, and subtracted in ``server_cpu_us_per_request_above_idle``);
- then ``ctr bench serve``'s sweep (clients/bench/serve.py: ``sweep``) upwards from that rate: the
  **max sustainable rate**, the best achieved rate whose step had no error and a p99 under the SLO,
  and the saturation rate (the best achieved at all).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from clients.bench.loadgen import run_load
from clients.bench.peers.peers import PEERS
from clients.bench.peers.processes import PeerProcess, python_module, running_peer
from clients.bench.serve import Case, SweepPlan, server, sweep

logger = logging.getLogger(__name__)

SIZES = (100, 1)
LOOSER_SLOS_MS = (50.0, 100.0, 250.0)  # a shared machine's scheduling delays reach tens of ms at p99
VERSIONED = ("ray", "bentoml", "litserve", "fastapi", "starlette", "uvicorn", "pydantic", "onnxruntime", "numpy")


@dataclass(frozen=True)
class PeerPlan:
    # from the common rate up by x1.6 per step: 14 steps pass 18,000 requests/s
    sweep: SweepPlan = field(default_factory=lambda: SweepPlan(step_s=3.0, growth=1.6, max_steps=14, refine_steps=1))
    # offered to every server, low enough for the slowest peer on the shared 2-core machine
    common_rps: dict[int, float] = field(default_factory=lambda: {100: 20.0, 1: 40.0})
    common_s: float = 5.0  # seconds of the common-rate step
    idle_s: float = 2.0  # seconds without load before it, to measure the server's idle CPU
    # equal CPU for every server: each confined to these cores, the load generator to the others (None: free)
    server_cpus: frozenset[int] | None = None

    @classmethod
    def quick(cls) -> PeerPlan:
        return cls(SweepPlan.quick(), {100: 5.0, 1: 20.0}, 0.6, 0.3)


def missing_packages(peers: list[str]) -> list[str]:
    """The peers' Python packages that are not installed (the ``bench`` extra gives them)."""
    return [PEERS[p][1] for p in peers if p != "service" and importlib.util.find_spec(PEERS[p][1]) is None]


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def cpu_breakdown(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], requests: int
) -> dict[str, float]:
    """CPU µs per request of each kind of process (same label summed), largest first, between two
    snapshots (pid -> (label, CPU seconds)); a process that started in between counts from zero."""
    by_label: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        spent = seconds - before.get(pid, (name, 0.0))[1]
        by_label[name] = by_label.get(name, 0.0) + spent
    per_request = {name: round(s * 1e6 / max(requests, 1), 1) for name, s in by_label.items() if s > 0}
    return dict(sorted(per_request.items(), key=lambda item: -item[1]))


def sustainable(steps: list[dict[str, Any]], slo_ms: float) -> dict[str, Any] | None:
    """The step with the best achieved rate among those without errors, with p99 under the SLO, that
    kept up (achieved at least 90% of the offered rate); None when no step did."""
    good = [
        s
        for s in steps
        if s["errors"] == 0 and s["ok"] > 0 and s["p99_ms"] <= slo_ms and s["achieved_rps"] >= 0.9 * s["offered_rps"]
    ]
    return max(good, key=lambda s: s["candidates_per_s"]) if good else None


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Service / peer max sustainable candidates/s, per body size (None where either has none)."""
    out: dict[str, float | None] = {}
    service = results.get("service", {})
    for peer, sizes in results.items():
        if peer == "service":
            continue
        for size, figures in sizes.items():
            ours = service.get(size, {}).get("sustainable_candidates_per_s")
            theirs = figures.get("sustainable_candidates_per_s")
            out[f"service/{peer} @{size}"] = round(ours / theirs, 2) if ours and theirs else None
    return out


def common_step(peer: PeerProcess, bodies: list[bytes], size: int, rate: float, plan: PeerPlan) -> dict[str, Any]:
    """``plan.idle_s`` without load (what the server's processes burn doing nothing), then one step at
    ``rate``: latency, and the CPU per answered request of every process of the server, with and
    without its idle burn."""
    idle_start = peer.cpu_by_process()
    time.sleep(plan.idle_s)
    before = peer.cpu_by_process()
    idle = {name: us / 1e6 for name, us in cpu_breakdown(idle_start, before, 1).items()}  # CPU s in idle_s
    connections = plan.sweep.connections
    started_at = time.perf_counter()
    result = asyncio.run(
        run_load("127.0.0.1", peer.port, "/v1/score", bodies, rate, plan.common_s, connections=connections)
    )
    elapsed = time.perf_counter() - started_at
    after = peer.cpu_by_process()
    step = result.to_dict(size)
    breakdown = cpu_breakdown(before, after, result.ok)
    step["server_cpu_us_per_request"] = round(sum(breakdown.values()), 1)
    step["cpu_us_per_request_by_process"] = breakdown
    idle_cores = sum(idle.values()) / plan.idle_s
    step["idle_cores"] = round(idle_cores, 3)
    step["idle_cores_by_process"] = {name: round(s / plan.idle_s, 3) for name, s in idle.items()}
    above = sum(breakdown.values()) - idle_cores * elapsed * 1e6 / max(result.ok, 1)
    step["server_cpu_us_per_request_above_idle"] = round(above, 1)
    step["processes"] = len(after)
    return step


def measure(peer: PeerProcess, bodies: dict[int, list[bytes]], plan: PeerPlan) -> dict[str, Any]:
    """Both body sizes on one running server."""
    out: dict[str, Any] = {}
    for size in SIZES:
        load_average = os.getloadavg()[0]
        common = common_step(peer, bodies[size], size, plan.common_rps[size], plan)
        case = Case(f"{peer.name}_{size}", peer.name, size, plan.common_rps[size] * plan.sweep.growth)
        swept = sweep(peer.port, peer.pid, bodies[size], case, plan.sweep, cpu=peer.cpu_seconds)
        best = sustainable([common, *swept["steps"]], plan.sweep.slo_ms)
        out[str(size)] = {
            "load_average_1m_at_start": round(load_average, 2),
            "common_rate": common,
            "sustainable_candidates_per_s": best["candidates_per_s"] if best else None,
            "sustainable_candidates_per_s_by_slo_ms": {  # the same steps read against looser targets
                str(slo): (
                    found["candidates_per_s"] if (found := sustainable([common, *swept["steps"]], slo)) else None
                )
                for slo in LOOSER_SLOS_MS
            },
            "sustainable_step": best,
            "saturation_candidates_per_s": swept["candidates_per_s"],
            "saturated": swept["saturated"],
            "steps": swept["steps"],
        }
    return out


@contextmanager
def started(name: str, repository: Path, model: str, threads: int, ready: bytes, logs: Path) -> Iterator[PeerProcess]:
    if name == "service":  # the service exactly as `ctr bench serve` starts it, dynamic batching on
        with server("service", repository, model, {"CTR_BATCHING": "true"}, threads) as (port, pid):
            yield PeerProcess(name, port, pid)
        return
    env = {
        "CTR_MODEL_REPOSITORY": str(repository.resolve()),
        "CTR_BENCH_MODEL": model,
        "CTR_INTRA_OP_THREADS": str(threads),
        "RAY_USAGE_STATS_ENABLED": "0",
        "BENTOML_DO_NOT_TRACK": "True",
    }
    command = python_module(PEERS[name][0], "--port", "{port}")
    with running_peer(name, command, env, ready, logs / f"{name}.log") as peer:
        yield peer


@contextmanager
def pinned(peer: PeerProcess, plan: PeerPlan) -> Iterator[None]:
    """With ``plan.server_cpus``: the server's processes on those cores, this process (the load
    generator) on the others, until the block ends."""
    if plan.server_cpus is None:
        yield
        return
    mine = os.sched_getaffinity(0)
    client = mine - plan.server_cpus
    if not client or not plan.server_cpus <= mine:
        raise ValueError(f"server cores {sorted(plan.server_cpus)} must be a strict subset of {sorted(mine)}")
    peer.pin(set(plan.server_cpus))
    os.sched_setaffinity(0, client)
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


def run_peers(
    repository: Path,
    model: str,
    bodies: dict[int, list[bytes]],
    plan: PeerPlan,
    peers: list[str],
    logs: Path,
    intra_op_threads: int = 1,
) -> dict[str, Any]:
    """Every peer in ``peers``, one after another; the report."""
    from clients.bench.machine import machine

    results: dict[str, dict[str, Any]] = {}
    for name in peers:
        logger.info("%s: starting", name)
        with started(name, repository, model, intra_op_threads, bodies[1][0], logs) as peer, pinned(peer, plan):
            results[name] = measure(peer, bodies, plan)
    return {
        "machine": machine(),
        "versions": versions(),
        "plan": {**asdict(plan), "server_cpus": sorted(plan.server_cpus) if plan.server_cpus is not None else None},
        "model": model,
        "peers": results,
        "ratios": ratios(results),
    }


def table(report: dict[str, Any]) -> str:
    slo = report["plan"]["sweep"]["slo_ms"]
    head = f"{'server':<11}{'cand':>5}{'sustain cand/s':>15}{'sat cand/s':>11}{'rate rps':>9}{'p50 ms':>8}"
    head += f"{'p99 ms':>8}{'CPU µs/req':>11}{'above idle':>11}{'idle cores':>11}{'load':>6}"
    rows = [head]
    for name, sizes in report["peers"].items():
        for size, figures in sizes.items():
            common = figures["common_rate"]
            sus = figures["sustainable_candidates_per_s"]
            rows.append(
                f"{name:<11}{size:>5}{sus if sus is not None else float('nan'):>15.0f}"
                f"{figures['saturation_candidates_per_s']:>11.0f}{common['offered_rps']:>9.0f}"
                f"{common['p50_ms']:>8.2f}{common['p99_ms']:>8.2f}{common['server_cpu_us_per_request']:>11.0f}"
                f"{common['server_cpu_us_per_request_above_idle']:>11.0f}{common['idle_cores']:>11.3f}"
                f"{figures['load_average_1m_at_start']:>6.1f}"
            )
    rows.append(f"sustainable: best achieved rate, no error, p99 <= {slo} ms; latency and CPU at the common rate")
    rows += [f"{k}: {v}" for k, v in report["ratios"].items()]
    rows.append("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    return "\n".join(rows)
