"""What the fixed-rate report scripts share (thread_occupancy.py, profile_service.py): their arguments, and
one `ctr serve` (this checkout's service, or ``--service-root``'s) warmed up with 2 s of the load."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.bench import request_bodies
from clients.bench.loadgen import run_load
from clients.bench.serve import server

WARM_UP_S = 2.0


def arguments(description: str, candidates: int, rate: float | None, seconds: float) -> argparse.Namespace:
    """``--candidates``, ``--rate`` (required when ``rate`` is None), ``--seconds``, ``--repository``,
    ``--model``, ``--service-root`` and ``--workers`` (``CTR_WORKERS``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--candidates", type=int, default=candidates)
    parser.add_argument("--rate", type=float, default=rate, required=rate is None)
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--service-root", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1, help="CTR_WORKERS: worker processes of the service")
    return parser.parse_args()


@contextmanager
def warmed_service(args: argparse.Namespace) -> Iterator[tuple[int, int, list[bytes]]]:
    """(port, server pid, the request bodies) once the service has had ``WARM_UP_S`` of the load; with
    ``--workers`` > 1 the pid is the supervisor's, the workers its children."""
    bodies = request_bodies(args.repository, args.model, args.candidates)
    env = {"CTR_WORKERS": str(args.workers)}
    with server("service", args.repository, args.model, env, 1, args.service_root) as (port, pid):
        asyncio.run(run_load("127.0.0.1", port, "/v1/score", bodies, args.rate, WARM_UP_S))
        yield port, pid, bodies
