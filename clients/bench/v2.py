"""``ctr bench serve``'s Open Inference Protocol cases: the same input tensors sent three ways.

- ``v2_json_{100,1000}``: ``POST /v2/models/{model}/infer`` with the tensors as JSON numbers, outputs
  answered as JSON (no Content-Type, as tritonclient sends it);
- ``v2_binary_{100,1000}``: the binary tensor data extension, inputs as raw little-endian bytes after a
  JSON header (``Inference-Header-Content-Length``), every output answered in binary;
- ``v2_grpc_{100,1000}``: ``inference.GRPCInferenceService/ModelInfer`` with ``raw_input_contents``.

The tensors are the model's encoded inputs for the world's 100-candidate request bodies (the same
bodies as the ``/v1/score`` cases); a 1000-row tensor is ten of them stacked. Each request's bytes
are built before the clock starts, so the figures are the server's and the transport's costs, not
the client's encoding. The six cases run one after another on one server process (gRPC on, as
``CTR_GRPC_PORT`` turns it on), so they are compared side by side; each is a closed loop,
``CONCURRENCY`` requests in flight for ``plan.step_s`` seconds after a short warm-up. Reported: rows and
requests per second, the server process's CPU time per request, the latency percentiles, and (measured
in the bench's own process, ``codec_cost``) the CPU the server spends per request reading it into
checked tensors and writing the response: the part that differs between the transports, which ONNX
Runtime's share of the server's CPU would otherwise hide.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from clients.bench.histogram import LatencyHistogram
from clients.bench.loadgen import read_response
from common.roles import one_model_in_every_role, role_outputs

logger = logging.getLogger(__name__)

CONCURRENCY = 8  # requests in flight per case
ROWS = (100, 1000)
TRANSPORTS = ("json", "binary", "grpc")
CASES = tuple(f"v2_{transport}_{rows}" for rows in ROWS for transport in TRANSPORTS)
DATATYPES = {"categorical": "INT64", "numeric": "FP32"}
WIRE = {"categorical": "<i8", "numeric": "<f4"}

Send = Callable[[Any], Awaitable[bool]]  # one request -> answered with outputs
Tensors = dict[str, np.ndarray]
CODEC_REPEATS = 200  # in-process runs of each transport's parse and render


def input_tensors(repository: Path, model: str, bodies_100: list[bytes], threads: int) -> tuple[Any, list[Tensors]]:
    """The loaded model, and its encoded inputs for each 100-candidate body (as the service encodes them)."""
    from service.models.loader import load_newest
    from service.models.snapshot import ServingModels
    from service.score.pipeline import prepare
    from service.settings import Settings

    settings = Settings(model_repository=repository, **one_model_in_every_role(model), intra_op_threads=threads)
    loaded = load_newest(settings, model, role_outputs())
    models = ServingModels(settings.roles, {model: loaded}, {})
    return loaded, [prepare(body, models, settings).encoded(loaded) for body in bodies_100]


def stacked(tensors: list[Tensors], rows: int) -> list[Tensors]:
    """Requests of ``rows`` rows, each made of consecutive 100-row tensors."""
    per = rows // 100
    groups = [tensors[i : i + per] for i in range(0, len(tensors) - per + 1, per)]
    return [{name: np.concatenate([t[name] for t in group]) for name in group[0]} for group in groups]


def infer_body(tensors: Tensors, binary: bool) -> tuple[bytes, int | None]:
    """An infer body, JSON or with binary tensors (and outputs), and its JSON header's size if binary."""
    inputs: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for name, value in tensors.items():
        tensor: dict[str, Any] = {"name": name, "datatype": DATATYPES[name], "shape": list(value.shape)}
        if binary:
            raw.append(value.astype(WIRE[name]).tobytes())
            tensor["parameters"] = {"binary_data_size": len(raw[-1])}
        else:
            tensor["data"] = value.ravel().tolist()
        inputs.append(tensor)
    request: dict[str, Any] = {"inputs": inputs}
    if binary:
        request["parameters"] = {"binary_data_output": True}
    header = orjson.dumps(request)
    return header + b"".join(raw), len(header) if binary else None


def http_request(port: int, model: str, body: bytes, json_size: int | None) -> bytes:
    """The whole HTTP/1.1 request for one infer call (no Content-Type, as tritonclient sends it)."""
    head = f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    if json_size is not None:
        head += f"Inference-Header-Content-Length: {json_size}\r\n"
    return (head + "\r\n").encode() + body


def grpc_request(model: str, tensors: Tensors) -> bytes:
    """A serialised ModelInferRequest with raw input contents (what tritonclient.grpc sends)."""
    from service.v2.grpc import messages as pb

    request = pb.ModelInferRequest(model_name=model)
    for name, value in tensors.items():
        request.inputs.add(name=name, datatype=DATATYPES[name], shape=list(value.shape))
        request.raw_input_contents.append(value.astype(WIRE[name]).tobytes())
    return request.SerializeToString()


async def closed_loop(connect: Callable[[], Awaitable[Send]], payloads: list[Any], seconds: float) -> dict[str, Any]:
    """``CONCURRENCY`` clients, each sending the next payload as soon as its last one was answered."""
    histogram = LatencyHistogram()
    counts = {"ok": 0, "errors": 0}
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def client(k: int) -> None:
        send = await connect()
        i = k
        while loop.time() < end:
            started = loop.time()
            ok = await send(payloads[i % len(payloads)])
            counts["ok" if ok else "errors"] += 1
            if ok:
                histogram.record((loop.time() - started) * 1e6)
            i += CONCURRENCY

    started = loop.time()
    await asyncio.gather(*(client(k) for k in range(CONCURRENCY)))
    elapsed = loop.time() - started
    return {"ok": counts["ok"], "errors": counts["errors"], "elapsed_s": elapsed, **histogram.summary_ms()}


def http_connect(port: int) -> Callable[[], Awaitable[Send]]:
    async def connect() -> Send:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def send(payload: bytes) -> bool:
            writer.write(payload)
            return await read_response(reader) == 200

        return send

    return connect


def grpc_connect(port: int) -> Callable[[], Awaitable[Send]]:
    import grpc

    async def connect() -> Send:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda payload: payload,  # serialised before the clock starts
            response_deserializer=lambda payload: payload,
        )

        async def send(payload: bytes) -> bool:
            try:
                await infer(payload, timeout=10)
            except grpc.aio.AioRpcError:
                return False
            return True

        return send

    return connect


def run_cases(
    repository: Path, model: str, bodies_100: list[bytes], step_s: float, threads: int, only: set[str] | None = None
) -> dict[str, Any]:
    """Every V2 case that ``only`` names (all when None), on one server; the case reports."""
    from clients.bench.machine import cpu_seconds
    from clients.bench.serve import server
    from clients.service_process import free_port

    chosen = [name for name in CASES if only is None or name in only]
    if importlib.util.find_spec("grpc") is None and any("grpc" in name for name in chosen):
        logger.warning("grpcio is not installed (pip install -e '.[grpc]'): the gRPC cases are left out")
        chosen = [name for name in chosen if "grpc" not in name]
    if not chosen:
        return {}
    loaded, tensors = input_tensors(repository, model, bodies_100, threads)
    cases: dict[str, Any] = {}
    grpc_port = free_port()
    with server("service", repository, model, {"CTR_GRPC_PORT": str(grpc_port)}, threads) as (port, pid):
        for name in chosen:
            _, transport, size = name.split("_")
            rows = int(size)
            requests = stacked(tensors, rows)
            if transport == "grpc":
                payloads: list[Any] = [grpc_request(model, t) for t in requests]
                connect = grpc_connect(grpc_port)
            else:
                bodies = [infer_body(t, transport == "binary") for t in requests]
                payloads = [http_request(port, model, *body) for body in bodies]
                connect = http_connect(port)
            asyncio.run(closed_loop(connect, payloads, min(step_s, 0.5)))  # warm-up: connections, first batches
            cpu_before = cpu_seconds(pid)
            result = asyncio.run(closed_loop(connect, payloads, step_s))
            cpu_after = cpu_seconds(pid)
            cases[name] = summary(result, rows, len(payloads[0]), cpu_before, cpu_after)
            cases[name]["codec_us_per_request"] = codec_cost(loaded, transport, requests[0])
            logger.info("%s: %.0f req/s, p99 %.1f ms", name, cases[name]["requests_per_s"], result["p99_ms"])
    return cases


def codec_cost(model: Any, transport: str, tensors: Tensors) -> dict[str, float]:
    """CPU µs the server spends reading one such request into checked tensors (clipped to the training range,
    as the request goes to its batcher) and writing its response (this process, no transport, no model run):
    what differs between the three transports."""
    from service.v2 import protocol
    from service.v2.grpc import messages as pb
    from service.v2.grpc.protocol import parse_request, render_response
    from service.v2.tensors import clipped_to_training_range

    rows = len(next(iter(tensors.values())))
    outputs = model.run(tensors)
    if transport == "grpc":
        raw = grpc_request(model.name, tensors)

        def read() -> Any:
            return parse_request(pb.ModelInferRequest.FromString(raw), model, rows)

        def render(call: Any) -> Any:
            return render_response(model, call, outputs).SerializeToString()
    else:
        body, json_size = infer_body(tensors, transport == "binary")

        def read() -> Any:
            return protocol.parse_infer(body, model, rows, json_size)

        def render(call: Any) -> Any:
            return protocol.render_infer(model, call, outputs)

    def parse() -> Any:
        call = read()
        clipped_to_training_range(call.inputs, model)
        return call

    call = parse()
    cost = {}
    for part, run in (("parse", parse), ("render", lambda: render(call))):
        started = time.process_time()
        for _ in range(CODEC_REPEATS):
            run()
        cost[part] = round((time.process_time() - started) * 1e6 / CODEC_REPEATS, 1)
    return cost


def summary(
    result: dict[str, Any], rows: int, request_bytes: int, cpu_before: float | None, cpu_after: float | None
) -> dict[str, Any]:
    rps = result["ok"] / result["elapsed_s"]
    step = {"achieved_rps": round(rps, 1), "candidates_per_s": round(rps * rows, 1), **result}
    cpu = None
    if cpu_before is not None and cpu_after is not None and result["ok"]:
        cpu = round((cpu_after - cpu_before) * 1e6 / result["ok"], 1)
    return {
        "candidates_per_s": step["candidates_per_s"],
        "requests_per_s": step["achieved_rps"],
        "server_cpu_us_per_request": cpu,
        "request_bytes": request_bytes,
        "closed_loop": {"concurrency": CONCURRENCY, "seconds": round(result["elapsed_s"], 2)},
        "at_slo": step,  # the table's latency columns: the closed loop's percentiles
        "steps": [step],
    }
