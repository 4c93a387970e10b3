"""The reference servers ``ctr bench serve`` measures the service against (uvicorn app factories).

- ``http_only``: FastAPI reads the body, parses it with orjson and answers one constant score per
  candidate: what the transport alone costs, with the framework most services are written in.
- ``asgi_only``: the same without the framework, a plain ASGI callable under uvicorn: the transport
  the service's own ``/v1/score`` handler uses (service/score/endpoint.py).
- ``bare_fastapi``: parses, encodes with the shared encoder and runs ONNX Runtime inline, per request,
  with no validation, batching or metrics: what a minimal FastAPI model server costs.
- ``asgi_batched``: ``asgi_only`` plus what no batching scoring server can skip: the requests whose
  bodies were read in one turn of the event loop are scored together (the service's model, encoder and
  answer, through the peers' ``PeerModel``: one encoder call and one ONNX Runtime run per batch), on the
  event loop or (``CTR_BENCH_MODEL_THREAD=true``) on a thread of the model's own, then answered; no
  checks (a body the service would refuse fails the batch it is in: 500s), deadlines, disconnect watch,
  shedding or metrics. The cheapest batched model server on this transport: the floor for
  ``service_1_batched``.

The model servers read ``CTR_MODEL_REPOSITORY`` and ``CTR_BENCH_MODEL`` (the newest version, with
``CTR_INTRA_OP_THREADS`` ONNX Runtime threads like the service).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnxruntime as ort
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from clients.bench.peers.model import PeerModel
from common.encoder import FeatureEncoder
from common.repository import MODEL_FILE, read_manifest, version_dir, versions

CONSTANT = {"pctr": 0.05, "pctcvr": 0.005, "pcvr": 0.1}
Scores = list[dict[str, float]]


def http_only() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/score")
    async def score(request: Request) -> Response:
        data = orjson.loads(await request.body())
        body = {"scores": [CONSTANT] * len(data["candidates"]), "models": {}}
        return Response(orjson.dumps(body), media_type="application/json")

    return app


def asgi_only() -> ASGIApp:
    """``http_only`` without the framework: a plain ASGI callable, as the service's ``/v1/score`` is."""

    def constants(data: dict) -> Scores:
        return [CONSTANT] * len(data["candidates"])

    return _plain_asgi(constants)


def asgi_batched() -> ASGIApp:
    """``asgi_only`` scoring with the served model, the requests read in one turn of the event loop
    together: on the loop itself, or with ``CTR_BENCH_MODEL_THREAD=true`` on a thread of the model's own,
    which takes what waits when it is done (as the service's batch thread does)."""
    return _plain_asgi(turn_batcher())


def turn_batcher() -> Callable[[dict], asyncio.Future]:
    """Body -> a future of its scores; the bodies given in one turn of the event loop are scored as one
    batch by the served model (``PeerModel.from_env``), on the loop or (``CTR_BENCH_MODEL_THREAD=true``)
    on a thread of the model's own."""
    model = PeerModel.from_env()
    pool = ThreadPoolExecutor(1) if os.environ.get("CTR_BENCH_MODEL_THREAD", "false") == "true" else None
    waiting: list[tuple[dict, asyncio.Future]] = []
    running = False

    def run_waiting() -> None:
        nonlocal running
        if running or not waiting:
            return
        batch = waiting[:]
        waiting.clear()
        bodies = [data for data, _ in batch]
        if pool is None:
            try:
                _answer(batch, model.score_batch(bodies))
            except Exception as error:  # the batch's requests fail with it (500s)
                _fail(batch, error)
            return
        running = True

        def done(scored: asyncio.Future) -> None:
            nonlocal running
            running = False
            if scored.exception() is None:
                _answer(batch, scored.result())
            else:
                _fail(batch, scored.exception())
            run_waiting()

        asyncio.get_running_loop().run_in_executor(pool, model.score_batch, bodies).add_done_callback(done)

    def scores(data: dict) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if not waiting:  # the first of this turn: the batch runs once the turn's other requests joined
            loop.call_soon(run_waiting)
        answer = loop.create_future()
        waiting.append((data, answer))
        return answer

    return scores


def _answer(batch: list[tuple[dict, asyncio.Future]], scores: list[Scores]) -> None:
    for (_, answer), own in zip(batch, scores, strict=True):
        answer.set_result(own)


def _fail(batch: list[tuple[dict, asyncio.Future]], error: BaseException) -> None:
    for _, answer in batch:
        answer.set_exception(error)


def answer_body(scores: Scores) -> bytes:
    """The reference servers' answer: the service's ``scores``, no model versions."""
    return orjson.dumps({"scores": scores, "models": {}})


def _plain_asgi(score: Callable[[dict], Scores | asyncio.Future]) -> ASGIApp:
    """A plain ASGI callable answering each POST body with ``{"scores": score(body), "models": {}}``
    (awaited when ``score`` gives a future)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # uvicorn's start-up and shutdown: nothing to do
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] != "POST":  # the bench's readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        scores = score(orjson.loads(body))
        if isinstance(scores, asyncio.Future):
            scores = await scores
        answer = answer_body(scores)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def bare_fastapi() -> FastAPI:
    root = Path(os.environ.get("CTR_MODEL_REPOSITORY", "models"))
    name = os.environ.get("CTR_BENCH_MODEL", "esmm")
    version = versions(root, name)[-1]
    manifest = read_manifest(root, name, version)
    encoder = FeatureEncoder(manifest.feature_spec)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("CTR_INTRA_OP_THREADS", "0"))
    session = ort.InferenceSession(
        str(version_dir(root, name, version) / MODEL_FILE), sess_options=options, providers=["CPUExecutionProvider"]
    )
    app = FastAPI()

    @app.post("/v1/score")
    async def score(request: Request) -> Response:
        data = orjson.loads(await request.body())
        candidates = data["candidates"]
        columns = dict(data.get("context", {}))
        for key in candidates[0]:
            columns[key] = [c.get(key) for c in candidates]
        inputs = encoder.encode(columns, len(candidates)).as_inputs()
        pctr, pctcvr = session.run(["pctr", "pctcvr"], inputs)
        scores = [{"pctr": a, "pctcvr": b} for a, b in zip(pctr.tolist(), pctcvr.tolist(), strict=True)]
        return Response(orjson.dumps({"scores": scores}), media_type="application/json")

    return app
