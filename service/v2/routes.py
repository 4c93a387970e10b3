"""Open Inference Protocol (KServe V2) REST: server and model metadata, readiness, and inference.

``POST /v2/models/{name}[/versions/{version}]/infer`` shares each model version's batcher with
``/v1/score``. Failures answer ``{"error": "..."}`` (with ``field`` naming the part at fault).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.batching import client
from service.deps import DeadlineDep, ModelsDep, SettingsDep, json_body
from service.http.body import INLINE_BODY_BYTES, request_body
from service.http.errors import ApiError, InputError, ModelUnavailable, error_responses
from service.models.base import ServedModel
from service.models.scoring_model import ScoringModel
from service.models.snapshot import ServingModels
from service.v2 import protocol
from service.v2.schemas import INFER_EXAMPLE, InferRequest, InferResponse, ModelMetadata, ModelReady, ServerMetadata

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

SERVER_NAME = "debiased-ctr"
SERVER_VERSION = "0.1.0"


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def served(models: ServingModels, name: str, version: str | None) -> ServedModel:
    """The model version a path names; 404 when it is not served."""
    if version is None:
        model = models.model(name)
    else:
        # ASCII digits only ("²" is a digit to str.isdigit but not to int), and few enough for int()
        if not (version.isascii() and version.isdigit() and len(version) <= 18) or int(version) < 1:
            raise ApiError(404, f"version {version!r} is not a positive integer", "version")
        model = models.model(name, int(version))
    if model is None:
        reason = models.errors.get(name)
        shown = f"model {name!r}" + (f" version {version}" if version else "")
        raise ApiError(404, f"{shown} is not served" + (f": {reason}" if reason else ""))
    return model


@router.get("", response_class=Response, responses={200: {"model": ServerMetadata}})
async def server_metadata() -> Response:
    """The server's name, version and protocol extensions."""
    return _json({"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": ["model_repository"]})


@router.get("/models/{name}", response_class=Response, responses={200: {"model": ModelMetadata}} | error_responses(404))
async def model_metadata(name: str, models: ModelsDep) -> Response:
    """The newest served version's input and output tensors, and every served version."""
    model = served(models, name, None)
    return _json(protocol.model_metadata(model, sorted(models.versions.get(name, {}))))


@router.get(
    "/models/{name}/versions/{version}",
    response_class=Response,
    responses={200: {"model": ModelMetadata}} | error_responses(404),
)
async def version_metadata(name: str, version: str, models: ModelsDep) -> Response:
    """One served version's input and output tensors."""
    return _json(protocol.model_metadata(served(models, name, version), [int(version)]))


@router.get(
    "/models/{name}/ready", response_class=Response, responses={200: {"model": ModelReady}} | error_responses(404)
)
async def model_ready(name: str, models: ModelsDep) -> Response:
    """200 when the model's newest version is loaded, warmed up and serving."""
    served(models, name, None)
    return _json({"name": name, "ready": True})


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_class=Response,
    responses={200: {"model": ModelReady}} | error_responses(404),
)
async def version_ready(name: str, version: str, models: ModelsDep) -> Response:
    """200 when this version is loaded, warmed up and serving."""
    served(models, name, version)
    return _json({"name": name, "version": version, "ready": True})


INFER_ERRORS = error_responses(400, 404, 413, 415, 503, 504)
INFER_DOC = request_body(InferRequest, INFER_EXAMPLE)


@router.post(
    "/models/{name}/infer",
    response_class=Response,
    responses={200: {"model": InferResponse}} | INFER_ERRORS,
    openapi_extra=INFER_DOC,
)
async def infer(
    name: str, request: Request, models: ModelsDep, settings: SettingsDep, deadline: DeadlineDep
) -> Response:
    """Run the newest served version on the given input tensors."""
    return await _infer(served(models, name, None), request, models, settings.max_candidates, deadline)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_class=Response,
    responses={200: {"model": InferResponse}} | INFER_ERRORS,
    openapi_extra=INFER_DOC,
)
async def infer_version(
    name: str,
    version: str,
    request: Request,
    models: ModelsDep,
    settings: SettingsDep,
    deadline: DeadlineDep,
) -> Response:
    """Run one served version on the given input tensors."""
    return await _infer(served(models, name, version), request, models, settings.max_candidates, deadline)


async def _infer(
    model: ServedModel, request: Request, models: ServingModels, max_rows: int, deadline: float
) -> Response:
    if not isinstance(model, ScoringModel):
        raise InputError(400, f"model {model.name!r} is a retrieval model: query it with POST /v1/similarity")
    declared = request.headers.get("content-length", "")
    largest = protocol.largest_body(model, max_rows)
    if declared.isdigit() and int(declared) > largest:  # refused before a byte of it is read
        raise InputError(
            413, f"body of {declared} bytes; an infer request of at most {max_rows} rows is under {largest}"
        )
    body = await json_body(request)
    if len(body) <= INLINE_BODY_BYTES:
        request_id, inputs, rows, outputs = protocol.parse_infer(body, model, max_rows)
    else:
        request_id, inputs, rows, outputs = await run_in_threadpool(protocol.parse_infer, body, model, max_rows)
    batcher = models.batcher(model)
    if batcher is None:
        raise ModelUnavailable(f"model {model.name!r} version {model.version} is no longer served")
    queued = client.enqueue([(model, batcher, inputs)], rows, deadline)
    result = (await client.outcomes(queued, request.receive))[model]
    return Response(protocol.render_infer(model, request_id, result, outputs), media_type="application/json")
