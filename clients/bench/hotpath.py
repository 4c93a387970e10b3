"""``ctr bench hotpath``: the service's own CPU per ``/v1/score`` request, in-process, without HTTP.

The service app (``create_app``, batching on, the garbage collector tuned as the server does) is driven
through a fake ASGI transport: each request is one ``app(scope, receive, send)`` call with its body in
one message and the scope ``ctr serve``'s connection gives (its arrival time, its ``Departure``),
``concurrency`` at a time, on uvloop. Nothing of uvicorn or of a load generator runs, so
the process's CPU time per request (the event loop's and the batch thread's: parsing, checks, the
batcher, encoding, ONNX Runtime, rendering) is the figure a shared machine disturbs least; it is the
one to compare two versions of the code with, interleaved. It is not a throughput figure: ``ctr bench
serve`` gives those, with the transport and the load generator on the same cores.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import uvloop

from common.roles import one_model_in_every_role
from service.app import create_app
from service.http.disconnect import DEPARTURE, Departure
from service.http.scope_keys import RECEIVED
from service.settings import Settings

WARM_UP_REQUESTS = 200


async def _drive(app: Any, bodies: list[bytes], n_requests: int, concurrency: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    never = loop.create_future()  # receive() after the body: the client stays
    statuses: dict[int, int] = {}

    async def one(body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "method": "POST", "path": "/v1/score", "root_path": "", "headers": headers}
        # what `ctr serve`'s connection puts in every scope (http/protocol.py): without a Departure the
        # handler would watch for a disconnect with a task of its own, which the server never runs
        scope[RECEIVED], scope[DEPARTURE] = loop.time(), Departure()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            return messages.pop() if messages else await asyncio.shield(never)

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    slots = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> None:
        async with slots:
            await one(bodies[i % len(bodies)])

    await asyncio.gather(*(bounded(i) for i in range(WARM_UP_REQUESTS)))
    statuses.clear()
    cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(n_requests)))
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    wall = time.perf_counter() - wall
    never.cancel()
    return {
        "requests": n_requests,
        "concurrency": concurrency,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "cpu_us_per_request": round(cpu * 1e6 / n_requests, 1),
        "event_loop_cpu_us_per_request": round(loop_cpu * 1e6 / n_requests, 1),
        "wall_us_per_request": round(wall * 1e6 / n_requests, 1),
    }


def hot_path(
    repository: Path, model: str, bodies: list[bytes], n_requests: int, concurrency: int, tune_gc: bool = True
) -> dict:
    """One measurement: ``n_requests`` bodies through the app, ``concurrency`` in flight. ``tune_gc``
    (as the server does: gc_tuning.py) changes this whole process's collector."""
    settings = Settings(
        model_repository=repository,
        **one_model_in_every_role(model),
        intra_op_threads=1,
        use_cuda=False,
        access_log=False,
    )
    app = create_app(settings, tune_gc=tune_gc)

    async def main() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            return await _drive(app, bodies, n_requests, concurrency)

    return uvloop.run(main())
