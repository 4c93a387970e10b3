"""``ctr bench serve``: the service against its ceilings, side by side, on one model and one set of bodies.

Cases (each reports ``candidates_per_s`` at saturation and latency at the highest rate whose p99 stays
under the SLO):
- ``raw_ort``: ONNX Runtime alone on batches of 100 already encoded (the model's ceiling; no HTTP);
- ``http_only`` / ``http_only_1``: 100- / 1-candidate bodies parsed and answered with constants;
- ``asgi_only_1``: the same without FastAPI (the transport the service's ``/v1/score`` runs on);
- ``asgi_batched_1`` / ``asgi_batched_thread_1``: that transport scoring 1-candidate bodies with the
  served model, batched, and nothing else (no checks, deadlines or metrics), the model run on the event
  loop / on a thread of its own: the cheapest batched model servers, floors for ``service_1_batched``;
- ``callback_only_1`` / ``callback_batched_1``: ``asgi_only_1`` / ``asgi_batched_1``'s work without ASGI:
  an asyncio protocol answering from callbacks, no task per request (callback_servers.py): what the
  transport costs beside the model;
- ``bare_fastapi``: a minimal FastAPI endpoint: shared encoder + ONNX Runtime per request;
- ``service_100``: the service's ``/v1/score`` with 100-candidate bodies;
- ``service_1_batched`` / ``service_1_unbatched``: 1-candidate bodies, dynamic batching on / off;
- ``asgi_only_1_workers2`` / ``service_1_batched_workers2``: ``asgi_only_1`` under uvicorn's two worker
  processes, ``service_1_batched`` with ``CTR_WORKERS=2``: the same transport and service on two processes;
- ``v2_{json,binary,grpc}_{100,1000}``: the Open Inference Protocol's transports (v2.py).

Each HTTP case runs its server in its own process and sweeps the offered rate upwards (open loop,
constant arrivals) until the server falls behind, then refines between the last rate it kept up with
and that one; saturation is the best achieved rate.

A shared host's speed drifts: raw ONNX Runtime alone gave 112,842 to 132,930 cand/s from one step to the
next of one run on the VM of 2026-12-02 (docs/serving-log.md). ``service_100 / raw_ort`` divides a saturation reached a
minute or more after ``raw_ort`` ran, so it carries that drift. With ``raw_ort`` among the cases, each
step of ``service_100`` is therefore followed by ``PROBE_S`` of raw ONNX Runtime in this process (the
load stopped, the server idle) and records it as ``ceiling_candidates_per_s``; the ratio
``service_100/raw_ort_paired`` divides the best step by the ceiling measured right after it.

The 1-candidate ratios against the bare transport carry the same drift, and more: two sweeps minutes
apart on a shared 2-core host (``asgi_only_1`` read 20,149 to 34,140 req/s within one hour of
2026-12-04). So after the sweeps, each pair of ``PAIRS`` whose two cases both ran is measured again
side by side: both servers up at once, in turns (ABBA order, ``plan.paired_rounds`` rounds), each turn
one step at each of ``PAIRED_RATES`` times the case's swept saturation and its best achieved rate kept,
as the sweep keeps its best step; ``<a>/<b>_paired`` is the median of the rounds' ratios, each of two
turns seconds apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from clients.bench import v2
from clients.bench.histogram import LatencyHistogram
from clients.bench.loadgen import LoadResult, run_load
from clients.bench.machine import machine, steal_pct_since, steal_seconds, tree_cpu_seconds
from clients.service_process import Signals, answers_200, free_port, poll_until_ready, started
from common.provenance import CHECKOUT
from common.roles import one_model_in_every_role, role_outputs

logger = logging.getLogger(__name__)

PROBE_S = 1.0  # raw ONNX Runtime after each service_100 step: the ceiling at that moment of the host
# pairs of 1-candidate cases measured again side by side after the sweeps (module docstring): a served
# case and the transport it is compared with
PAIRS = (("service_1_batched", "asgi_only_1"), ("service_1_batched_workers2", "asgi_only_1_workers2"))
# a paired turn offers each of these multiples of the case's swept saturation and keeps the best achieved
# rate, as the sweep keeps its best step: a server slower now than in its sweep falls behind at 1.0, and
# one faster now shows it at 1.25
PAIRED_RATES = (1.0, 1.25)


@dataclass(frozen=True)
class SweepPlan:
    step_s: float = 4.0  # seconds per offered rate
    growth: float = 1.5  # each step offers this many times the last
    max_steps: int = 14  # enough to pass every case's saturation on this machine: a sweep must end by falling behind
    refine_steps: int = 2  # finer steps between the last rate kept up with and the first one not
    slo_ms: float = 25.0  # p99 target for the "latency at SLO" figures
    connections: int = 64
    intra_op_threads: int = 1  # ONNX Runtime threads in every case (0: its default, one per core)
    paired_rounds: int = 4  # alternated side-by-side steps of each pair of PAIRS (module docstring)

    @classmethod
    def quick(cls) -> SweepPlan:
        return cls(step_s=0.3, growth=3.0, max_steps=2, refine_steps=0, connections=8, paired_rounds=2)


@dataclass(frozen=True)
class Case:
    name: str
    server: str  # "service", "http_only", "bare_fastapi"
    candidates: int
    start_rps: float
    env: tuple[tuple[str, str], ...] = ()


SERVER_WORKERS = "BENCH_SERVER_WORKERS"  # a case's setting: uvicorn's --workers for a reference server
READY_TIMEOUT_S = 60.0  # a server not answering its readiness route by then failed to start
STOP_SIGNALS: Signals = ((signal.SIGTERM, 20.0), (signal.SIGKILL, None))  # how a server is stopped

CASES = (
    Case("http_only", "http_only", 100, 100),
    Case("bare_fastapi", "bare_fastapi", 100, 50),
    Case("service_100", "service", 100, 50),
    Case("http_only_1", "http_only", 1, 400),
    Case("asgi_only_1", "asgi_only", 1, 400),
    Case("asgi_batched_1", "asgi_batched", 1, 400),
    Case("asgi_batched_thread_1", "asgi_batched", 1, 400, (("CTR_BENCH_MODEL_THREAD", "true"),)),
    Case("callback_only_1", "callback_only", 1, 400),
    Case("callback_batched_1", "callback_batched", 1, 400),
    Case("service_1_batched", "service", 1, 400, (("CTR_BATCHING", "true"),)),
    Case("service_1_unbatched", "service", 1, 400, (("CTR_BATCHING", "false"),)),
    # each with two processes on the port: uvicorn's workers, the service's (CTR_WORKERS)
    Case("asgi_only_1_workers2", "asgi_only", 1, 400, ((SERVER_WORKERS, "2"),)),
    Case("service_1_batched_workers2", "service", 1, 400, (("CTR_BATCHING", "true"), ("CTR_WORKERS", "2"))),
)
# every name --cases takes: ONNX Runtime alone, the served cases, the V2 transports (v2.py)
CASE_NAMES = ("raw_ort", *(case.name for case in CASES), *v2.CASES)


@contextmanager
def server(
    kind: str,
    repository: Path,
    model: str,
    env: dict[str, str],
    intra_op_threads: int = 1,
    service_root: Path | None = None,
    python: str | None = None,
    port: int | None = None,
) -> Iterator[tuple[int, int]]:
    """A server of ``kind`` on ``port`` (None: a free loopback port), until the block ends; the service's
    code from ``service_root`` (another checkout, e.g. an older commit) where given, else this one's; run by
    the interpreter ``python`` (another build or version, with the same packages installed) where given, else
    by this process's."""
    port = free_port() if port is None else port
    root = service_root.resolve() if kind == "service" and service_root is not None else CHECKOUT
    base = {
        **os.environ,
        "PYTHONPATH": str(root),
        "CTR_MODEL_REPOSITORY": str(repository.resolve()),
        "CTR_BENCH_MODEL": model,
        "CTR_CTR_MODEL": model,
        "CTR_CTCVR_MODEL": model,
        "CTR_USE_CUDA": os.environ.get("CTR_USE_CUDA", "true"),
        "CTR_ACCESS_LOG": "false",
        "CTR_LOG_LEVEL": "WARNING",
        "CTR_PORT": str(port),
        "CTR_INTRA_OP_THREADS": str(intra_op_threads),
        **env,
    }
    interpreter = python or sys.executable
    if kind == "service":
        command = [interpreter, "-m", "service"]
    elif kind.startswith("callback_"):
        command = [interpreter, "-m", "clients.bench.callback_servers", kind, str(port)]
    else:
        command = [interpreter, "-m", "uvicorn", f"clients.bench.asgi_apps:{kind}", "--factory", "--port", str(port)]
        command += ["--no-access-log", "--log-level", "warning"]
        command += ["--workers", base[SERVER_WORKERS]] if SERVER_WORKERS in base else []
    # its output to a file (a pipe nobody reads until the end stalls a server once it fills), read for the
    # error of a failed start; SIGTERM, then a kill after 20 s
    with tempfile.TemporaryDirectory(prefix="ctr-bench-") as scratch:
        log = Path(scratch) / f"{kind}.log"
        ready = partial(_wait_ready, port, kind=kind, log=log)
        with started(command, base, ready, log, cwd=root, signals=STOP_SIGNALS) as process:
            yield port, process.pid


@contextmanager
def servers_together(*servers: tuple[Any, ...]) -> Iterator[list[tuple[int, int]]]:
    """Several servers (``server``'s positional arguments each) started at once, each on a free port of its
    own (where a measurement needs two up, it waited for one start, then for the other). Yields their (port,
    pid) in order; stops them all when the block ends, and those started already where one fails to start."""
    ports: list[int] = []
    for _ in servers:
        ports.append(free_port(*ports))
    with ExitStack() as stack, ThreadPoolExecutor(len(servers)) as pool:
        pairs = zip(servers, ports, strict=True)
        starts = [pool.submit(stack.enter_context, server(*args, port=port)) for args, port in pairs]
        yield [start.result() for start in starts]


def served_providers(port: int) -> dict[str, str | None]:
    """The execution provider each served model's session runs on (``GET /v1/models``): the provider a
    service case measured, read back from the service (onnxruntime-gpu falls back to CPU silently)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as response:
        return {model["name"]: model.get("provider") for model in json.loads(response.read())["models"]}


ModelRuns = dict[str, dict[str, float]]  # model -> items, runs, compute_s so far


def model_runs(port: int) -> ModelRuns:
    """Each served model's items (rows), runs (batches) and the runs' time so far, all versions (``GET
    /v2/models/stats``, Triton's ``inference_count``, ``execution_count`` and ``compute_infer``): a step's
    difference is the batches it formed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/stats", timeout=5) as response:
        stats = json.loads(response.read())["model_stats"]
    totals: ModelRuns = {}
    for entry in stats:
        total = totals.setdefault(entry["name"], {"items": 0, "runs": 0, "compute_s": 0.0})
        total["items"] += entry["inference_count"]
        total["runs"] += entry["execution_count"]
        total["compute_s"] += entry["inference_stats"]["compute_infer"]["ns"] / 1e9
    return totals


def runs_between(before: ModelRuns, after: ModelRuns) -> dict[str, dict[str, float]]:
    """The model runs between two ``model_runs`` readings and their mean items, for each model that ran."""
    formed = {}
    for name, total in after.items():
        runs = total["runs"] - before.get(name, {}).get("runs", 0)
        if runs > 0:
            items = total["items"] - before.get(name, {}).get("items", 0)
            formed[name] = {"runs": runs, "items_per_run": round(items / runs, 1)}
    return formed


def _wait_ready(port: int, process: subprocess.Popen, kind: str, log: Path) -> None:
    """Until the server answers 200 on its readiness route (the service's ``/v2/health/ready``, a
    reference server's ``/docs``); RuntimeError with its output (``log``) if it exits first."""
    path = "/v2/health/ready" if kind == "service" else "/docs"
    poll_until_ready(
        process,
        partial(answers_200, f"http://127.0.0.1:{port}{path}"),
        READY_TIMEOUT_S,
        exited=lambda code: f"{kind} server exited with {code}: {log.read_text(encoding='utf-8', errors='replace')}",
        late=lambda: f"{kind} server not ready after {READY_TIMEOUT_S:.0f} s",
        interval_s=0.1,
    )


def sweep(
    port: int,
    pid: int,
    bodies: list[bytes],
    case: Case,
    plan: SweepPlan,
    cpu: Callable[[], float | None] | None = None,
    ceiling: Callable[[], float] | None = None,
    runs: Callable[[], ModelRuns] | None = None,
) -> dict[str, Any]:
    """Offered rate rising by ``growth`` until the server falls behind; the steps and the two figures.

    Each step also reports the server's CPU time per answered request (``cpu``: CPU seconds so far,
    by default the process ``pid``'s and its children's), which a shared machine disturbs far less than
    throughput or latency; given a ``ceiling`` (cand/s of the model alone, measured when called),
    that ceiling right after it; given ``runs`` (``model_runs`` of the service), the model runs the step
    formed and their mean items.
    """
    steps: list[dict[str, Any]] = []
    read_cpu = cpu or (lambda: tree_cpu_seconds(pid))

    def keeps_up(rate: float) -> bool:
        step = measured_step(port, bodies, case.candidates, rate, plan.step_s, plan.connections, read_cpu, runs)
        if ceiling is not None:
            step["ceiling_candidates_per_s"] = round(ceiling(), 1)
        steps.append(step)
        logger.info(
            "%s: offered %.0f rps -> %.0f rps, p99 %.1f ms", case.name, rate, step["achieved_rps"], step["p99_ms"]
        )
        return step["achieved_rps"] >= 0.9 * step["offered_rps"] and step["errors"] <= 0.01 * max(step["sent"], 1)

    rate = case.start_rps
    for _ in range(plan.max_steps):
        if not keeps_up(rate):
            break
        rate *= plan.growth
    else:  # never fell behind: the figure is a lower bound, and the report says so
        highest = rate / plan.growth  # the last rate offered (the loop grew it once more)
        logger.warning("%s kept up with every offered rate: its saturation is above %.0f rps", case.name, highest)
        return {**summarise(steps, plan.slo_ms), "saturated": False}
    # Between the last rate it kept up with and the first it did not, finer steps: the saturation figure
    # and the highest rate within the SLO are then known to a fraction of one coarse step.
    if len(steps) > 1:
        kept_up = rate / plan.growth
        for k in range(1, plan.refine_steps + 1):
            if not keeps_up(kept_up * plan.growth ** (k / (plan.refine_steps + 1))):
                break
    return {**summarise(steps, plan.slo_ms), "saturated": True}


def measured_step(
    port: int,
    bodies: list[bytes],
    n_candidates: int,
    rate: float,
    seconds: float,
    connections: int,
    read_cpu: Callable[[], float | None],
    read_runs: Callable[[], ModelRuns] | None = None,
) -> dict[str, Any]:
    """One step of open-loop load on ``/v1/score``: the generator's figures, the server's CPU per answered
    request (``read_cpu``: its CPU seconds so far), the host's steal time meanwhile (% of one CPU) and,
    given ``read_runs``, the model runs formed (``model_runs``)."""
    runs_before = read_runs() if read_runs is not None else None
    cpu_before, steal_before = read_cpu(), steal_seconds()
    result: LoadResult = asyncio.run(
        run_load("127.0.0.1", port, "/v1/score", bodies, rate, seconds, connections=connections)
    )
    cpu_after, steal_pct = read_cpu(), steal_pct_since(steal_before, seconds)
    step = result.to_dict(n_candidates)
    if read_runs is not None and runs_before is not None:
        step["model_runs"] = runs_between(runs_before, read_runs())
    if cpu_before is not None and cpu_after is not None and result.ok:
        step["server_cpu_us_per_request"] = round((cpu_after - cpu_before) * 1e6 / result.ok, 1)
    if steal_pct is not None:
        step["host_steal_pct"] = steal_pct
    return step


def summarise(steps: list[dict[str, Any]], slo_ms: float) -> dict[str, Any]:
    best = max(steps, key=lambda s: s["candidates_per_s"])
    within = [s for s in steps if s["errors"] == 0 and s["p99_ms"] <= slo_ms]
    at_slo = max(within, key=lambda s: s["offered_rps"]) if within else None
    cpu = [s["server_cpu_us_per_request"] for s in steps if "server_cpu_us_per_request" in s]
    summary = {
        "candidates_per_s": best["candidates_per_s"],
        "requests_per_s": best["achieved_rps"],
        "server_cpu_us_per_request": min(cpu) if cpu else None,
        "at_slo": at_slo,
        "steps": steps,
    }
    if "ceiling_candidates_per_s" in best:  # the model alone, right after the best step
        summary["ceiling_candidates_per_s"] = best["ceiling_candidates_per_s"]
    if "model_runs" in best:  # the batches the service formed at its best step
        summary["model_runs"] = best["model_runs"]
    return summary


class RawOrt:
    """ONNX Runtime alone on batches of 100 encoded rows, back to back on one thread: the model's ceiling."""

    def __init__(self, repository: Path, model: str, bodies: list[bytes], threads: int) -> None:
        from service.models.loader import load_newest
        from service.models.snapshot import ServingModels
        from service.score.pipeline import prepare
        from service.settings import Settings

        settings = Settings(model_repository=repository, **one_model_in_every_role(model), intra_op_threads=threads)
        self.model = load_newest(settings, model, role_outputs())
        models = ServingModels(settings.roles, {model: self.model}, {})
        self.inputs = [prepare(body, models, settings).encoded(self.model) for body in bodies]
        self.rows = len(next(iter(self.inputs[0].values())))

    def measure(self, duration_s: float) -> dict[str, Any]:
        """Runs for ``duration_s``: the case's figures (``raw_ort`` in the report)."""
        histogram = LatencyHistogram()
        runs = 0
        cpu_start = time.process_time()
        start = time.perf_counter()
        while time.perf_counter() - start < duration_s:
            t0 = time.perf_counter()
            self.model.run(self.inputs[runs % len(self.inputs)])
            histogram.record((time.perf_counter() - t0) * 1e6)
            runs += 1
        elapsed = time.perf_counter() - start
        cpu_us = (time.process_time() - cpu_start) * 1e6 / max(runs, 1)
        step = {
            "achieved_rps": round(runs / elapsed, 1),
            "candidates_per_s": round(runs * self.rows / elapsed, 1),
            "sent": runs,
            "ok": runs,
            "errors": 0,
            **histogram.summary_ms(),
        }
        return {
            "candidates_per_s": step["candidates_per_s"],
            "requests_per_s": step["achieved_rps"],
            "provider": self.model.provider,  # the execution provider in use, read back from the session
            "server_cpu_us_per_request": round(cpu_us, 1),  # this process: ONNX Runtime's threads included
            "at_slo": step,
            "steps": [step],
        }

    def candidates_per_s(self) -> float:
        """The ceiling now: ``PROBE_S`` of runs."""
        return self.measure(PROBE_S)["candidates_per_s"]


def run_bench(
    repository: Path,
    model: str,
    bodies_100: list[bytes],
    bodies_1: list[bytes],
    plan: SweepPlan,
    only: set[str] | None = None,
    service_root: Path | None = None,
) -> dict[str, Any]:
    """Every case, one after another, on the same repository and bodies; the report. ``service_root``:
    the service cases run another checkout's service (the same load generator and bodies: a before /
    after comparison of the service's code alone)."""
    cases: dict[str, Any] = {}
    ceiling = None
    if only is None or "raw_ort" in only:
        ceiling = RawOrt(repository, model, bodies_100, plan.intra_op_threads)
        cases["raw_ort"] = ceiling.measure(max(plan.step_s, 0.5))
    for case in CASES:
        if only is not None and case.name not in only:
            continue
        bodies = bodies_100 if case.candidates == 100 else bodies_1
        env = dict(case.env)
        probe = ceiling.candidates_per_s if ceiling is not None and case.name == "service_100" else None
        with server(case.server, repository, model, env, plan.intra_op_threads, service_root) as (port, pid):
            runs = partial(model_runs, port) if case.server == "service" else None
            cases[case.name] = sweep(port, pid, bodies, case, plan, ceiling=probe, runs=runs)
            if case.server == "service":
                cases[case.name]["providers"] = served_providers(port)
    paired = {
        f"{a}/{b}_paired": side_by_side(repository, model, bodies_1, plan, (cases[a], cases[b]), (a, b), service_root)
        for a, b in PAIRS
        if a in cases and b in cases
    }
    cases.update(v2.run_cases(repository, model, bodies_100, plan.step_s, plan.intra_op_threads, only))
    report = {"machine": machine(), "plan": plan.__dict__, "model": model, "cases": cases, "paired": paired}
    report["ratios"] = {**ratios(cases), **{name: pair["median_ratio"] for name, pair in paired.items()}}
    return report


def side_by_side(
    repository: Path,
    model: str,
    bodies: list[bytes],
    plan: SweepPlan,
    swept: tuple[dict[str, Any], dict[str, Any]],
    names: tuple[str, str],
    service_root: Path | None = None,
) -> dict[str, Any]:
    """Two swept cases measured again in turns, both servers up (the module docstring): each round's two
    turns (ABBA order), each turn's steps and best achieved requests/s, their ratio, and the median of
    those ratios."""
    by_name = {case.name: case for case in CASES}
    rates = [[multiple * case["requests_per_s"] for multiple in PAIRED_RATES] for case in swept]
    arguments = [
        (by_name[name].server, repository, model, dict(by_name[name].env), plan.intra_op_threads, service_root)
        for name in names
    ]
    with servers_together(*arguments) as servers:
        rounds = []
        for k in range(plan.paired_rounds):
            order = (0, 1) if k % 2 == 0 else (1, 0)
            turns: list[dict[str, Any]] = [{}, {}]
            for i in order:
                port, pid = servers[i]
                cpu = partial(tree_cpu_seconds, pid)
                steps = [measured_step(port, bodies, 1, rate, plan.step_s, plan.connections, cpu) for rate in rates[i]]
                turns[i] = {"achieved_rps": max(step["achieved_rps"] for step in steps), "steps": steps}
            achieved = [turn["achieved_rps"] for turn in turns]
            rounds.append(
                {
                    "first": names[order[0]],
                    names[0]: turns[0],
                    names[1]: turns[1],
                    "ratio": round(achieved[0] / achieved[1], 3) if achieved[1] else float("nan"),
                }
            )
            logger.info("%s / %s, round %d: %.0f / %.0f rps", *names, k + 1, *achieved)
    readings = [r["ratio"] for r in rounds if r["ratio"] == r["ratio"]]
    return {
        # a case that kept up with every rate of its sweep (a smoke run) may keep up here too: its ratio
        # is then one of offered rates, not of capacities
        "saturated": {name: bool(case.get("saturated")) for name, case in zip(names, swept, strict=True)},
        "offered_rps": {name: [round(rate, 1) for rate in own] for name, own in zip(names, rates, strict=True)},
        "rounds": rounds,
        "median_ratio": round(float(np.median(readings)), 3) if readings else float("nan"),
        "ratio_range": [min(readings), max(readings)] if readings else [],
    }


def ratios(cases: dict[str, Any]) -> dict[str, float]:
    def ratio(a: str, b: str) -> float:
        if a not in cases or b not in cases or not cases[b]["candidates_per_s"]:
            return float("nan")
        return round(cases[a]["candidates_per_s"] / cases[b]["candidates_per_s"], 3)

    paired = cases.get("service_100", {})
    return {
        "service_100/raw_ort": ratio("service_100", "raw_ort"),
        # the best step over the model alone right after it (the host's drift between the two left out)
        "service_100/raw_ort_paired": round(paired["candidates_per_s"] / paired["ceiling_candidates_per_s"], 3)
        if paired.get("ceiling_candidates_per_s")
        else float("nan"),
        "service_100/bare_fastapi": ratio("service_100", "bare_fastapi"),
        "service_1_batched/http_only_1": ratio("service_1_batched", "http_only_1"),
        "service_1_batched/service_1_unbatched": ratio("service_1_batched", "service_1_unbatched"),
        "service_1_batched/asgi_only_1": ratio("service_1_batched", "asgi_only_1"),
        "asgi_batched_1/asgi_only_1": ratio("asgi_batched_1", "asgi_only_1"),
        "asgi_batched_thread_1/asgi_only_1": ratio("asgi_batched_thread_1", "asgi_only_1"),
        "service_1_batched/asgi_batched_1": ratio("service_1_batched", "asgi_batched_1"),
        "service_1_batched/asgi_batched_thread_1": ratio("service_1_batched", "asgi_batched_thread_1"),
        "callback_batched_1/asgi_only_1": ratio("callback_batched_1", "asgi_only_1"),
        "callback_batched_1/callback_only_1": ratio("callback_batched_1", "callback_only_1"),
        "service_1_batched/callback_batched_1": ratio("service_1_batched", "callback_batched_1"),
        "service_1_batched_workers2/asgi_only_1_workers2": ratio("service_1_batched_workers2", "asgi_only_1_workers2"),
        "service_1_batched_workers2/asgi_only_1": ratio("service_1_batched_workers2", "asgi_only_1"),
    }


def table(report: dict[str, Any]) -> str:
    rows = [f"{'case':<28}{'cand/s':>10}{'req/s':>8}{'CPU µs/req':>11}{'SLO rps':>9}"]
    rows[0] += f"{'p50':>8}{'p90':>8}{'p99':>8}{'p99.9':>8}"
    for name, case in report["cases"].items():
        slo = case["at_slo"] or {}
        cells = [slo.get(k, np.nan) for k in ("p50_ms", "p90_ms", "p99_ms", "p99_9_ms")]
        cpu = case.get("server_cpu_us_per_request")
        rows.append(
            f"{name:<28}{case['candidates_per_s']:>10.0f}{case['requests_per_s']:>8.0f}"
            f"{cpu if cpu is not None else np.nan:>11.0f}"
            f"{slo.get('offered_rps', slo.get('achieved_rps', np.nan)):>9.0f}" + "".join(f"{c:>8.2f}" for c in cells)
        )
    rows.append("latency (ms) at the highest offered rate whose p99 stayed under the SLO")
    in_use = {
        name: sorted({case["provider"]} if "provider" in case else set(case["providers"].values()))
        for name, case in report["cases"].items()
        if "provider" in case or "providers" in case
    }
    if in_use:
        rows.append("execution providers: " + "; ".join(f"{name} {', '.join(p)}" for name, p in in_use.items()))
    formed = [
        f"{name} {model} {runs['items_per_run']:.1f}"
        for name, case in report["cases"].items()
        for model, runs in case.get("model_runs", {}).items()
    ]
    if formed:
        rows.append("items per model run at the best step: " + "; ".join(formed))
    rows += [f"{k}: {v}" for k, v in report["ratios"].items() if v == v]  # the ratios of the cases run (no NaN)
    for name, pair in report.get("paired", {}).items():
        readings = ", ".join(str(r["ratio"]) for r in pair["rounds"])
        rows.append(f"{name}, each round's ratio (its two turns side by side): {readings}")
    return "\n".join(rows)
