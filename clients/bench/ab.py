"""``ctr bench ab``: this checkout's service beside another's, load alternated between them.

On a machine shared with other tenants, two sweeps of ``ctr bench serve`` minutes apart compare two
moments of the host as much as two versions of the code: on the 2-core VM of 2026-12-02's later stop
the same service gave 9,319 and 5,664 1-candidate req/s in consecutive runs, with the host stealing up
to 37 % of a CPU at times (docs/serving.md "Comparing two versions"). Here both services run for the
whole comparison, serving the same repository (or, with ``other_repository``, each its own: two exports of
a model under one service's code): open-loop load at one fixed rate goes to each in turn,
``rounds`` times, in ABBA order (A B, B A, A B, ...), so a slow spell of the host falls on both. Each
round records the server's CPU per answered request (what a version costs: a saturation figure needs
the whole machine, CPU per request does not), achieved rate, p50/p99, errors and the host's steal time
during the round (``/proc/stat``). The report gives each side's rounds and medians and the ratio of the
medians (this checkout over the other).

Pick a rate both keep up with (below either's saturation in ``ctr bench serve``): past it, a round
measures the door's refusals, not the service.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

from clients.bench.loadgen import run_load
from clients.bench.machine import cpu_seconds
from clients.bench.serve import measured_step, servers_together
from common.provenance import CHECKOUT

# load before the first round, on each side (sessions, caches, the batcher's rate), for no longer than a
# round: a smoke run's rounds of 0.5 s (tests/e2e/test_bench_ab.py) followed 2 s of it on each side
WARM_UP_S = 2.0


KEPT_UP = 0.95  # a side answering less than this share of the offered rate fell behind it


def round_order(rounds: int) -> list[str]:
    """ABBA order: ``this`` first in even rounds, ``other`` first in odd ones."""
    order: list[str] = []
    for i in range(rounds):
        order += ["this", "other"] if i % 2 == 0 else ["other", "this"]
    return order


def summary(rounds: list[dict]) -> dict[str, Any]:
    cpu = [r["server_cpu_us_per_request"] for r in rounds if "server_cpu_us_per_request" in r]
    return {
        "median_cpu_us_per_request": round(statistics.median(cpu), 1) if cpu else None,
        "median_achieved_rps": round(statistics.median(r["achieved_rps"] for r in rounds), 1),
        "median_p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
        "median_p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 2),
        "errors": sum(r["errors"] for r in rounds),
        "rounds": rounds,
    }


def run_ab(
    repository: Path,
    model: str,
    bodies: list[bytes],
    n_candidates: int,
    other_root: Path | None,
    rate: float,
    seconds: float = 6.0,
    rounds: int = 6,
    connections: int = 64,
    intra_op_threads: int = 1,
    other_repository: Path | None = None,
    other_python: str | None = None,
) -> dict[str, Any]:
    """Both services up, ``rounds`` rounds of ``seconds`` at ``rate`` each, ABBA; medians and their ratio.
    The other side runs ``other_root``'s code (this checkout's if None) on ``other_repository`` (the
    same repository if None) under the interpreter ``other_python`` (this process's if None)."""
    other_root = CHECKOUT if other_root is None else other_root
    other_repository = repository if other_repository is None else other_repository
    other_python = sys.executable if other_python is None else other_python
    results: dict[str, list[dict]] = {"this": [], "other": []}
    sides = (
        ("service", repository, model, {}, intra_op_threads),
        ("service", other_repository, model, {}, intra_op_threads, other_root, other_python),
    )
    with servers_together(*sides) as (this, other):
        servers = {"this": this, "other": other}
        for port, _ in servers.values():
            warm_up = run_load(
                "127.0.0.1", port, "/v1/score", bodies, rate, min(WARM_UP_S, seconds), connections=connections
            )
            asyncio.run(warm_up)
        for side in round_order(rounds):
            port, pid = servers[side]
            step = measured_step(port, bodies, n_candidates, rate, seconds, connections, partial(cpu_seconds, pid))
            results[side].append(step)
    report: dict[str, Any] = {
        "roots": {"this": str(CHECKOUT), "other": str(other_root.resolve())},
        "repositories": {"this": str(repository.resolve()), "other": str(other_repository.resolve())},
        "pythons": {"this": interpreter(sys.executable), "other": interpreter(other_python)},
        "candidates": n_candidates,
        "rate": rate,
        "seconds": seconds,
        "rounds": rounds,
        "sides": {side: summary(steps) for side, steps in results.items()},
    }
    this_cpu = report["sides"]["this"]["median_cpu_us_per_request"]
    other_cpu = report["sides"]["other"]["median_cpu_us_per_request"]
    report["cpu_ratio_this_over_other"] = round(this_cpu / other_cpu, 3) if this_cpu and other_cpu else None
    behind = [side for side, result in report["sides"].items() if result["median_achieved_rps"] < KEPT_UP * rate]
    if behind:  # a side that fell behind queued: its CPU per request is not that of the offered load
        report["warning"] = (
            f"{' and '.join(behind)} answered under {KEPT_UP:.0%} of the offered {rate:g} req/s: lower --rate "
            "below both services' saturation (the CPU ratio compares unlike loads)"
        )
    return report


def interpreter(python: str) -> str:
    """The interpreter at ``python``: its path and its version line, as the report names a side's."""
    asked = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True)
    return f"{python} ({asked.stdout.strip()})"


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{'side':<6} {'round':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'CPU µs/req':>10}"
        f" {'steal %':>8}"
    ]
    for side, result in report["sides"].items():
        for i, r in enumerate(result["rounds"]):
            cpu, steal = r.get("server_cpu_us_per_request", float("nan")), r.get("host_steal_pct", float("nan"))
            lines.append(
                f"{side:<6} {i:>5} {r['achieved_rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>6}"
                f" {cpu:>10.1f} {steal:>8.1f}"
            )
    for side, result in report["sides"].items():
        lines.append(
            f"{side}: median {result['median_cpu_us_per_request']} µs/req, {result['median_achieved_rps']} req/s,"
            f" p50 {result['median_p50_ms']} ms, p99 {result['median_p99_ms']} ms ({report['roots'][side]},"
            f" {report['repositories'][side]}, {report['pythons'][side]})"
        )
    lines.append(f"CPU per request, this / other: {report['cpu_ratio_this_over_other']}")
    lines += [f"warning: {report['warning']}"] if "warning" in report else []
    return "\n".join(lines)
