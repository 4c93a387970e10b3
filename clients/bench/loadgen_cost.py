"""``ctr bench loadgen``: what the load generator itself costs, so that its figures can be trusted.

The generator (clients/bench/loadgen.py) shares the benchmark machine with the server it measures. At each
offered rate this runs it against the cheapest server there is (``asgi_only``: a plain ASGI callable
answering constants, clients/bench/asgi_apps.py) pinned to one CPU, the generator pinned to the other, and
reports the generator's CPU per request, its lag behind its own schedule (intended send -> written,
p99) and the server's CPU per request beside it. A generator whose CPU per request nears a core's
worth at a rate (1e6 / rate µs), or whose lag grows, cannot offer that rate faithfully.

``generator`` may name another ``loadgen.py`` (an older commit's, ``git show REV:clients/bench/loadgen.py``)
to compare the two with the same command.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from clients.bench import loadgen
from clients.bench.harden import pinned_apart, unpin
from clients.bench.machine import cpu_seconds
from clients.bench.serve import server

RATES = (5_000, 10_000, 20_000, 30_000)  # ctr bench loadgen's default


def generator_module(path: Path | None) -> ModuleType:
    """This checkout's generator, or the ``loadgen.py`` at ``path``."""
    if path is None:
        return loadgen
    spec = importlib.util.spec_from_file_location("loadgen_under_test", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def measure(rates: tuple[float, ...], seconds: float, generator: Path | None = None) -> dict[str, Any]:
    module = generator_module(generator)
    body = json.dumps({"context": {"user_id": "u_1"}, "candidates": [{"ad_id": "ad_1", "ad_price": 1.0}]}).encode()
    steps = []
    with server("asgi_only", Path("models"), "esmm", {}) as (port, pid):  # (it reads no model: constants)
        pinned = pinned_apart(pid)
        try:
            for rate in rates:
                started_cpu, server_cpu = time.process_time(), cpu_seconds(pid)
                result = asyncio.run(module.run_load("127.0.0.1", port, "/v1/score", [body], rate, seconds))
                generator_s, server_s = time.process_time() - started_cpu, cpu_seconds(pid)
                steps.append(
                    {
                        "offered_rps": rate,
                        "achieved_rps": round(result.achieved_rps, 1),
                        "statuses": {str(k): v for k, v in result.statuses.items()},
                        "generator_cpu_us_per_request": round(generator_s * 1e6 / max(result.sent, 1), 1),
                        "server_cpu_us_per_request": round((server_s - server_cpu) * 1e6 / max(result.ok, 1), 1)
                        if server_s is not None and server_cpu is not None
                        else None,
                        "generator_lag_p99_ms": round(result.send_lag.percentile(99) / 1000, 2),
                        "p50_ms": round(result.histogram.percentile(50) / 1000, 3),
                        "p99_ms": round(result.histogram.percentile(99) / 1000, 3),
                    }
                )
                time.sleep(0.5)
        finally:
            if pinned:
                unpin()
    return {"generator": str(generator) if generator else "clients/bench/loadgen.py", "pinned": pinned, "steps": steps}


def table(report: dict[str, Any]) -> str:
    lines = [f"generator: {report['generator']} (pinned apart from the server: {report['pinned']})"]
    lines.append(
        f"{'offered/s':>10}{'achieved/s':>12}{'gen µs/req':>12}{'server µs/req':>15}{'lag p99 ms':>12}{'p99 ms':>9}"
    )
    for step in report["steps"]:
        lines.append(
            f"{step['offered_rps']:>10.0f}{step['achieved_rps']:>12.0f}{step['generator_cpu_us_per_request']:>12.1f}"
            f"{step['server_cpu_us_per_request'] or float('nan'):>15.1f}{step['generator_lag_p99_ms']:>12.2f}"
            f"{step['p99_ms']:>9.2f}"
        )
    return "\n".join(lines)
