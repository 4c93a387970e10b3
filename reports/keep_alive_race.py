"""Measurement behind docs/serving-log.md "The keep-alive race": how many typed-client calls get no answer
because the service closed their idle connection as they went out on it.

`ctr serve` (from ``--server-root``, a checkout) with ``CTR_KEEP_ALIVE_S`` (1 s here, so that the race
comes every second instead of every five) behind a proxy that delays every chunk of bytes and every
close by ``--delay-ms`` each way (clients/latency_proxy.py: a network; on loopback the race's window is
tens of microseconds), and ``--clients`` typed clients (``AsyncScoringClient`` from ``--client-root``'s
clients/client/, one connection each) sending 1-candidate scores with pauses drawn uniformly from
``--gap-lo``..``--gap-hi`` seconds. ``--expiry`` is how long the client keeps an idle connection (httpx's
default 5 s ignores the service's ``Keep-Alive`` hint; setting it to the hint is what a client that
honours it does). Run from the repository root after `ctr prepare`:

    PYTHONPATH=. python reports/keep_alive_race.py --server-root PREV --client-root PREV --out reports/X.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from cli.bench import request_bodies
from clients.latency_proxy import latency_proxy
from clients.service_process import free_port, stop, wait_ready


def commit(root: Path) -> str:
    """The checkout's commit (with "+changes" when its tracked files differ from it)."""
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD"], capture_output=True).returncode
    return head.stdout.strip() + ("+changes" if dirty else "")


def typed_client_module(root: Path):  # -> the package clients/client/ of that checkout (clients/client.py before)
    package = root / "clients" / "client"
    if not package.is_dir():  # a checkout from before the client was a package: its one module
        spec = importlib.util.spec_from_file_location("typed_client_under_test", root / "clients" / "client.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    # Under its own name, so that the modules it imports (clients.client.*) are found in that checkout's package
    # (this script imports no other clients.client first)
    spec = importlib.util.spec_from_file_location(
        "clients.client", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def clients_run(url: str, client_module, bodies: list[dict], args: argparse.Namespace) -> dict:
    errors: dict[str, int] = {}
    answered = resent = 0
    hints: set[str] = set()

    async def note_hint(response: httpx.Response) -> None:
        hints.add(str(response.headers.get("keep-alive")))

    async def one_client(k: int) -> None:
        nonlocal answered, resent
        draw = random.Random(args.seed * 1000 + k)
        client = client_module.AsyncScoringClient(url, max_connections=1)
        await client._http.aclose()  # the same pool with the client's expiry of idle connections
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=args.expiry)
        client._http = httpx.AsyncClient(
            base_url=url, timeout=10.0, limits=limits, event_hooks={"response": [note_hint]}
        )
        await asyncio.sleep(draw.uniform(0, args.gap_hi))
        for i in range(args.requests):
            body = bodies[(k * args.requests + i) % len(bodies)]
            try:
                await client.score(body.get("context", {}), body["candidates"])
                answered += 1
            except Exception as error:  # every failure, counted by kind
                kind = f"{type(error).__name__}: {str(error)[:60]}"
                errors[kind] = errors.get(kind, 0) + 1
            await asyncio.sleep(draw.uniform(args.gap_lo, args.gap_hi))
        resent += getattr(client, "resent", 0)
        await client.aclose()

    started = time.monotonic()
    await asyncio.gather(*(one_client(k) for k in range(args.clients)))
    return {
        "calls": args.clients * args.requests,
        "answered": answered,
        "errors": errors,
        "resent": resent,
        "keep_alive_headers": sorted(hints),
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-root", type=Path, default=Path("."))
    parser.add_argument("--client-root", type=Path, default=Path("."))
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--keep-alive", type=float, default=1.0, help="CTR_KEEP_ALIVE_S")
    parser.add_argument("--grace", type=float, default=None, help="CTR_KEEP_ALIVE_GRACE_S (unset: the default)")
    parser.add_argument("--expiry", type=float, default=5.0, help="the client's idle connection expiry (s)")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="the proxy's delay each way")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--gap-lo", type=float, default=0.9)
    parser.add_argument("--gap-hi", type=float, default=1.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(args.server_root.resolve()),
        "CTR_MODEL_REPOSITORY": str(args.repository.resolve()),
        "CTR_PORT": str(port),
        "CTR_KEEP_ALIVE_S": str(args.keep_alive),
        "CTR_LOG_LEVEL": "WARNING",
        "CTR_ACCESS_LOG": "false",
        "CTR_INTRA_OP_THREADS": "1",
    }
    if args.grace is not None:
        env["CTR_KEEP_ALIVE_GRACE_S"] = str(args.grace)
    bodies = [json.loads(body) for body in request_bodies(args.repository, "esmm", 1)]
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "server.log"
        with open(log, "wb") as output:
            server = subprocess.Popen(
                [sys.executable, "-m", "service"], cwd=args.server_root, env=env, stdout=output, stderr=output
            )
        try:
            wait_ready(server, f"http://127.0.0.1:{port}", log)
            with latency_proxy(port, args.delay_ms / 1000) as proxy_port:
                outcome = asyncio.run(
                    clients_run(f"http://127.0.0.1:{proxy_port}", typed_client_module(args.client_root), bodies, args)
                )
        finally:
            stop(server)
    report = {"command": " ".join(sys.argv), **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    report["server_commit"], report["client_commit"] = commit(args.server_root), commit(args.client_root)
    report.update(outcome)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(outcome) + "\n")


if __name__ == "__main__":
    main()
