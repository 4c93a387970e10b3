"""``ctr bench ...``: benchmarks that print a table and write JSON.

Each checks what it is given before any server starts: a case or peer name it does not know, a model
without an exported version, a ``--service-root`` that holds no service, each refused in one line (a
typo in ``--cases`` ran nothing and exited 0; a model without a version waited 60 s for a service that
would never be ready). A SIGTERM ends a benchmark as Ctrl-C does, its servers stopped with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from cli.help_text import HelpTyper
from cli.options import RepositoryOption, above_zero, numbers
from cli.reports import check_writable, run_record, write_report
from clients.bench.batch_size_grid import SIZES
from clients.bench.overload_connections import CONNECTIONS, WARM_CONNECTIONS
from clients.bench.peers.peers import PEERS

bench_app = HelpTyper(help="Benchmarks: print a table, write a JSON report.", no_args_is_help=True)


def _writable(out: Path) -> Path:
    check_writable(out)  # before minutes of measuring, not after them
    return out


ReportOption = Annotated[Path, typer.Option(help="JSON report to write.", callback=_writable)]


def _checkout(root: Path | None) -> Path | None:
    """A ``--service-root`` must hold a service package: from an empty directory, ``python -m service``
    imported this checkout's through the editable install, and a comparison compared it with itself."""
    if root is not None and not (root / "service" / "__init__.py").is_file():
        raise typer.BadParameter(f"{root} holds no service/ package: give a checkout (e.g. git worktree add)")
    return root


# the options every serving benchmark takes
ModelOption = Annotated[
    str, typer.Option(help="Repository model to serve (its config's world section draws the bodies).")
]
ServiceRootOption = Annotated[
    Path | None,
    typer.Option(
        help="Serve the service from this checkout (e.g. an older commit's worktree); the load generator stays"
        " this one's.",
        callback=_checkout,
    ),
]


def chosen(text: str, known: Sequence[str], option: str) -> list[str]:
    """The comma-separated names of ``text``; BadParameter naming one that is not among ``known``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise typer.BadParameter(f"{unknown or 'nothing'} is not among {', '.join(known)}", param_hint=option)
    return names


def require_exported(repository: Path, model: str) -> None:
    """FileNotFoundError unless ``model`` has an exported version in ``repository``; ValueError where its latest
    is a retrieval model's (``--model esam``: every serving benchmark sends /v1/score bodies, which its service
    answered 404, and ``bench hotpath`` stopped on a KeyError traceback)."""
    from common.repository import read_manifest, versions
    from service.models.retrieval_model import is_retrieval

    exported = versions(repository, model)
    if not exported:
        raise FileNotFoundError(
            f"model {model!r} has no exported version in {repository}: run `ctr prepare -r {repository}` "
            f"(or train and export it), or pass -r with a repository that has one"
        )
    if is_retrieval(read_manifest(repository, model, max(exported))):
        raise ValueError(
            f"--model {model} is a retrieval model (it answers /v1/similarity); the serving benchmarks send "
            "/v1/score requests: pass --model with a scoring model, e.g. esmm"
        )


def request_bodies(repository: Path, model: str, candidates: int, count: int = 32) -> list[bytes]:
    """``count`` ``/v1/score`` bodies of ``candidates`` candidates each, drawn by the model's [world]
    (seeds 0 to ``count`` - 1: every benchmark sends the same bodies)."""
    from training.config_world import repository_world

    world = repository_world(repository, model)
    return [json.dumps(world.sample_request(candidates, seed=s)).encode() for s in range(count)]


@bench_app.command("serve")
def serve(
    context: typer.Context,
    out: ReportOption = Path("reports/bench_serve.json"),
    model: ModelOption = "esmm",
    repository: RepositoryOption = Path("models"),
    quick: Annotated[bool, typer.Option(help="Two short steps per case (a smoke run, not a measurement).")] = False,
    step_s: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds per offered rate (default 4; 0.3 with --quick).")
    ] = None,
    slo_ms: Annotated[float, typer.Option(help="p99 target for the latency-at-SLO figures.")] = 25.0,
    cases: Annotated[str | None, typer.Option(help="Comma-separated subset of cases.")] = None,
    intra_op_threads: Annotated[int, typer.Option(help="ONNX Runtime threads in every case (0: one per core).")] = 1,
    service_root: ServiceRootOption = None,
    connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Connections the load generator may hold at once (default 64, the control every figure before"
            " 2026-12-03 night used; 8 with --quick; a fleet of ad servers holds hundreds).",
        ),
    ] = None,
) -> None:
    """The service against raw ONNX Runtime, the bare transport and a minimal FastAPI server."""
    from dataclasses import replace

    from clients.bench.serve import CASE_NAMES, SweepPlan, run_bench, table

    only = set(chosen(cases, CASE_NAMES, "--cases")) if cases else None
    require_exported(repository, model)
    plan = SweepPlan.quick() if quick else SweepPlan()
    plan = replace(plan, slo_ms=slo_ms, intra_op_threads=intra_op_threads, **({"step_s": step_s} if step_s else {}))
    plan = replace(plan, connections=connections) if connections is not None else plan
    bodies = {n: request_bodies(repository, model, n) for n in (100, 1)}
    report = run_bench(repository, model, bodies[100], bodies[1], plan, only, service_root)
    report |= run_record(context)
    write_report(out, report)
    typer.echo(table(report))
    typer.echo(f"wrote {out}")


@bench_app.command("hotpath")
def hotpath(
    context: typer.Context,
    out: ReportOption = Path("reports/bench_hotpath.json"),
    model: ModelOption = "esmm",
    repository: RepositoryOption = Path("models"),
    quick: Annotated[bool, typer.Option(help="A tenth of the requests (a smoke run).")] = False,
) -> None:
    """The service's CPU per /v1/score request in-process, no HTTP (clients/bench/hotpath.py)."""
    from clients.bench.hotpath import hot_path

    require_exported(repository, model)
    cases = {"service_100": (100, 2000, 8), "service_1_batched": (1, 15000, 64)}  # candidates, requests, in flight
    report: dict = {**run_record(context), "model": model, "cases": {}}
    for name, (candidates, requests, concurrency) in cases.items():
        bodies = request_bodies(repository, model, candidates)
        requests = requests // 10 if quick else requests
        report["cases"][name] = hot_path(repository, model, bodies, requests, concurrency)
    write_report(out, report)
    typer.echo(f"{'case':<20}{'CPU µs/req':>12}{'loop µs/req':>13}{'wall µs/req':>13}  statuses")
    for name, case in report["cases"].items():
        typer.echo(
            f"{name:<20}{case['cpu_us_per_request']:>12.0f}{case['event_loop_cpu_us_per_request']:>13.0f}"
            f"{case['wall_us_per_request']:>13.0f}  {case['statuses']}"
        )
    typer.echo(f"wrote {out}")


@bench_app.command("batch-sizes")
def batch_sizes(
    context: typer.Context,
    out: ReportOption = Path("reports/bench_batch_sizes.json"),
    model: ModelOption = "esmm",
    repository: RepositoryOption = Path("models"),
    sizes: Annotated[
        str | None, typer.Option(help=f"Comma-separated batch sizes, rows (default: {', '.join(map(str, SIZES))}).")
    ] = None,
    seconds: Annotated[float, typer.Option(min=0.01, help="Seconds of runs per size and round.")] = 1.0,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds; the sizes take turns in each.")] = 3,
    intra_op_threads: Annotated[int, typer.Option(help="ONNX Runtime threads (0: one per core).")] = 1,
) -> None:
    """ONNX Runtime's cost per run and per row at each batch size: where ``max_batch_size`` stops paying."""
    from clients.bench import batch_sizes as bench

    wanted = numbers(sizes, int, "--sizes") if sizes else SIZES
    if not wanted or min(wanted) < 1:
        raise typer.BadParameter("batch sizes must be positive integers", param_hint="--sizes")
    require_exported(repository, model)
    bodies = request_bodies(repository, model, 100)
    report = {
        **run_record(context),
        **bench.measure(repository, model, bodies, wanted, seconds, rounds, intra_op_threads),
    }
    write_report(out, report)
    typer.echo(bench.table(report))
    typer.echo(f"wrote {out}")


PEER_NAMES = tuple(PEERS)


@bench_app.command("peers")
def peers(
    context: typer.Context,
    out: ReportOption = Path("reports/bench_peers.json"),
    model: ModelOption = "esmm",
    repository: RepositoryOption = Path("models"),
    quick: Annotated[bool, typer.Option(help="Short steps (a smoke run, not a measurement).")] = False,
    only: Annotated[str, typer.Option("--peers", help="Comma-separated servers.")] = ",".join(PEER_NAMES),
    slo_ms: Annotated[float, typer.Option(help="p99 target of the max sustainable rate.")] = 25.0,
    server_cpus: Annotated[
        str | None, typer.Option(help="Cores each server is confined to (e.g. 1); the load generator gets the rest.")
    ] = None,
) -> None:
    """The service beside Ray Serve, BentoML and LitServe on the same model, bodies and load (docs/serving.md)."""
    from dataclasses import replace

    from clients.bench.peers.runner import PeerPlan, missing_packages, run_peers, table

    peers_chosen = chosen(only, PEER_NAMES, "--peers")
    if missing := missing_packages(peers_chosen):
        raise typer.BadParameter(f"{', '.join(missing)} not installed: pip install -e '.[bench]'", param_hint="--peers")
    require_exported(repository, model)
    plan = PeerPlan.quick() if quick else PeerPlan()
    cpus = frozenset(numbers(server_cpus, int, "--server-cpus")) if server_cpus else None
    plan = replace(plan, sweep=replace(plan.sweep, slo_ms=slo_ms), server_cpus=cpus)
    bodies = {n: request_bodies(repository, model, n) for n in (100, 1)}
    logs = Path("artifacts/bench_peers_logs")  # the servers' logs
    report = run_peers(repository, model, bodies, plan, peers_chosen, logs)
    report |= run_record(context)
    write_report(out, report)
    typer.echo(table(report))
    typer.echo(f"wrote {out}")


HARDEN_CASES = "overload,pauses,drain,slow_clients,large_bodies"


def _warm_connections(count: int) -> int:
    """A ``--warm-connections`` the load generator can open: one past its connections was cut to them unsaid."""
    if not 0 <= count <= CONNECTIONS:
        raise typer.BadParameter(
            f"{count:,} is not 0 to {CONNECTIONS:,}: the load generator opens {CONNECTIONS:,} connections at most"
        )
    return count


@bench_app.command("harden")
def harden(
    context: typer.Context,
    out: ReportOption = Path("reports/bench_harden.json"),
    model: ModelOption = "esmm",
    repository: RepositoryOption = Path("models"),
    cases: Annotated[str, typer.Option(help="Comma-separated subset of cases.")] = HARDEN_CASES,
    seconds: Annotated[float, typer.Option(min=0.1, help="Seconds of load per step.")] = 10.0,
    sustainable_rps: Annotated[
        float | None, typer.Option(help="Overload: take this as the sustainable rate instead of measuring it.")
    ] = None,
    client_idle_s: Annotated[
        float, typer.Option(help="Overload: clients close a connection idle this long (0: never, the old generator).")
    ] = 4.0,
    warm_connections: Annotated[
        int,
        typer.Option(
            help=f"Overload: connections the clients hold open before each step (of the load generator's "
            f"{CONNECTIONS:,} at most).",
            callback=_warm_connections,
        ),
    ] = WARM_CONNECTIONS,
    drain_workers: Annotated[int, typer.Option(min=1, help="Drain: the service's worker processes.")] = 1,
    drain_clients: Annotated[int, typer.Option(min=1, help="Drain: steady keep-alive clients.")] = 32,
    drain_repeats: Annotated[int, typer.Option(min=1, help="Drain: drains, each of a fresh service.")] = 1,
    service_root: ServiceRootOption = None,
) -> None:
    """The service under overload, pauses, SIGTERM, slow clients and large invalid bodies (docs/serving.md)."""
    import logging

    from clients.bench import harden as bench
    from clients.bench.serve import server

    picked = set(chosen(cases, HARDEN_CASES.split(","), "--cases"))
    if sustainable_rps is not None:
        above_zero(sustainable_rps, "--sustainable-rps")
    require_exported(repository, model)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    (body,) = request_bodies(repository, model, 10, count=1)
    report: dict = {**run_record(context), "model": model, "cases": {}}
    env = {"CTR_ACCESS_LOG": "false"}
    if "overload" in picked:
        with server("service", repository, model, env, 1, service_root) as (port, pid):
            idle = client_idle_s or None
            report["cases"]["overload"] = bench.overload_case(
                port, pid, body, seconds, sustainable_rps, idle, warm_connections
            )
    if "pauses" in picked:
        with server("service", repository, model, env, 1, service_root) as (port, pid):
            report["cases"]["pauses"] = bench.pauses_case(port, pid, body, seconds)
    if "drain" in picked:
        drains, drain_env = [], {**env, "CTR_WORKERS": str(drain_workers)}
        for _ in range(drain_repeats):
            with server("service", repository, model, drain_env, 0, service_root) as (port, pid):
                drains.append(bench.drain(pid, port, body, clients=drain_clients, load_s=seconds / 2))
        report["cases"]["drain"] = drains[0] if drain_repeats == 1 else bench.drains_summary(drains, drain_workers)
    if "slow_clients" in picked:
        with server("service", repository, model, env, 0, service_root) as (port, _):
            report["cases"]["slow_clients"] = bench.slow_clients(f"http://127.0.0.1:{port}", port, 2000, 40.0)
    if "large_bodies" in picked:
        with server("service", repository, model, env, 0, service_root) as (port, pid):
            url = f"http://127.0.0.1:{port}"
            report["cases"]["large_bodies"] = bench.large_bodies(url, pid, model, 96, 3_900_000)
    write_report(out, report)
    typer.echo(bench.table(report))
    typer.echo(f"wrote {out}")


@bench_app.command("steps")
def steps(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="The repository model whose training step is timed.")] = "ctr",
    out: ReportOption = Path("reports/bench_steps.json"),
    repository: RepositoryOption = Path("models"),
) -> None:
    """A training step's cost at the configured batch and at 1/2 and 1/4 of it (docs/scale.md)."""
    from training.fitting.bench_steps import time_steps

    rows = time_steps(name, repository)
    write_report(out, {**run_record(context), "threads": 1, "steps": rows})
    typer.echo(f"{'batch':>8} {'ms/step':>10} {'rows/s':>10}")
    for row in rows:
        typer.echo(f"{row['batch']:>8} {row['ms_per_step']:>10.3f} {row['rows_per_second']:>10}")
    typer.echo(f"wrote {out}")


@bench_app.command("loadgen")
def loadgen(
    context: typer.Context,
    out: ReportOption = Path("reports/bench_loadgen.json"),
    rates: Annotated[
        str | None, typer.Option(help="Comma-separated offered rates, requests/s (default 5000,10000,20000,30000).")
    ] = None,
    seconds: Annotated[float, typer.Option(min=0.1, help="Seconds of load per rate.")] = 4.0,
    generator: Annotated[
        Path | None, typer.Option(help="Another loadgen.py to measure (e.g. an older commit's).")
    ] = None,
) -> None:
    """The load generator's own CPU per request and lag, against a constant-answer server
    (clients/bench/loadgen_cost.py)."""
    from clients.bench import loadgen_cost as bench

    offered = numbers(rates, float, "--rates") if rates else bench.RATES
    for offer in offered:
        above_zero(offer, "--rates")
    report = {**run_record(context), **bench.measure(offered, seconds, generator)}
    write_report(out, report)
    typer.echo(bench.table(report))
    typer.echo(f"wrote {out}")


@bench_app.command("ab")
def ab(
    context: typer.Context,
    service_root: Annotated[
        Path | None,
        typer.Option(
            help="The other checkout (e.g. an older commit's worktree) whose service to compare.", callback=_checkout
        ),
    ] = None,
    out: ReportOption = Path("reports/bench_ab.json"),
    model: ModelOption = "esmm",
    repository: RepositoryOption = Path("models"),
    candidates: Annotated[int, typer.Option(min=1, help="Candidates per /v1/score request.")] = 1,
    rate: Annotated[float, typer.Option(help="Offered requests/s, below both services' saturation.")] = 4000.0,
    seconds: Annotated[
        float,
        typer.Option(
            min=0.1, help="Seconds of load per round, and of each side's warm-up before the first (at most 2)."
        ),
    ] = 6.0,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per side, in ABBA order.")] = 6,
    other_repository: Annotated[
        Path | None,
        typer.Option(help="The other side's model repository (e.g. another export of the model); default: the same."),
    ] = None,
    other_python: Annotated[
        Path | None,
        typer.Option(
            help="The other side's interpreter (another build or version of Python with the project's packages,"
            " e.g. a venv's bin/python); default: this one."
        ),
    ] = None,
) -> None:
    """This checkout's service and another's (or the same service on another repository, or under another
    interpreter) side by side, load alternated, CPU per request (clients/bench/ab.py)."""
    from clients.bench.ab import run_ab, table

    if service_root is None and other_repository is None and other_python is None:
        raise typer.BadParameter(
            "give --service-root, --other-repository, --other-python or several: the two sides must differ"
        )
    above_zero(rate, "--rate")
    require_exported(repository, model)
    bodies = request_bodies(repository, model, candidates)
    report = {
        **run_record(context),
        **run_ab(
            repository,
            model,
            bodies,
            candidates,
            service_root,
            rate,
            seconds,
            rounds,
            other_repository=other_repository,
            other_python=str(other_python) if other_python else None,
        ),
    }
    write_report(out, report)
    typer.echo(table(report))
    typer.echo(f"wrote {out}")
