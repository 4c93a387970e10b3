"""Open Inference Protocol (KServe V2) REST: server and model metadata, readiness, model configuration,
statistics and inference (JSON, or with the binary tensor data extension: protocol.py).

``POST /v2/models/{name}[/versions/{version}]/infer`` shares each model version's batcher with
``/v1/score`` (and the gRPC service). Failures answer ``{"error": "..."}`` (with ``field`` naming the
part at fault). A request without a Content-Type is read as JSON, as the protocol and its clients have
it, and so is one of curl's ``-d`` default type (``application/x-www-form-urlencoded``, which Python's
urllib sends too), as Triton reads it; any other type than JSON (or ``application/octet-stream`` with
the binary extension) is 415.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from common.version import DISTRIBUTION, VERSION
from service.deps import DeadlineDep, ModelsDep, SettingsDep
from service.http.body import INLINE_BODY_BYTES, TIMEOUT_PARAMETER, check_media_type
from service.http.disconnect import watcher
from service.http.errors import BAD_BODY, InputError, error_responses
from service.http.openapi_bodies import request_body
from service.models.base import ServedModel
from service.models.snapshot import ServingModels
from service.settings import Settings
from service.sibling_metrics import reported
from service.v2 import protocol, serving
from service.v2.model_config import served_config
from service.v2.schemas import (
    INFER_EXAMPLE,
    InferRequest,
    InferResponse,
    ModelConfig,
    ModelMetadata,
    ModelReady,
    ServerMetadata,
    Statistics,
)
from service.v2.serving import served
from service.v2.statistics import statistics

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

SERVER_NAME = DISTRIBUTION
SERVER_VERSION = VERSION
EXTENSIONS = ["model_configuration", "statistics", "binary_tensor_data"]  # over REST and gRPC
REPOSITORY_EXTENSION = "model_repository"  # REST only, and only with the admin routes (CTR_ADMIN_TOKEN)
FORM_TYPE = "application/x-www-form-urlencoded"  # what curl -d and urllib send when none is given


# the 400 of a route with a version in its path (serving.served)
BAD_VERSION = (400, "The version is not one: a positive integer of at most 18 ASCII digits with no leading zero.")


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.get("", response_class=Response, responses={200: {"model": ServerMetadata}})
async def server_metadata(settings: SettingsDep) -> Response:
    """The server's name, version and the protocol extensions it answers (``model_repository`` only while
    the admin routes are on)."""
    extensions = [*EXTENSIONS, REPOSITORY_EXTENSION] if settings.admin_token is not None else EXTENSIONS
    return _json({"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": extensions})


@router.get("/models/stats", response_class=Response, responses={200: {"model": Statistics}})
async def all_statistics(request: Request, models: ModelsDep) -> Response:
    """Triton's statistics extension for every served model version (this route hides the metadata of
    a model named "stats": read it at ``/v2/models/stats/versions/{v}``)."""
    versions = sorted(models.served)
    return _json(statistics(reported(request.app.state)[0], versions))


@router.get("/models/{name}", response_class=Response, responses={200: {"model": ModelMetadata}} | error_responses(404))
async def model_metadata(name: str, models: ModelsDep) -> Response:
    """The newest served version's input and output tensors, and every served version."""
    model = served(models, name, None)
    return _json(protocol.model_metadata(model, sorted(models.versions.get(name, {}))))


@router.get(
    "/models/{name}/versions/{version}",
    response_class=Response,
    responses={200: {"model": ModelMetadata}} | error_responses(BAD_VERSION, 404),
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
    responses={200: {"model": ModelReady}} | error_responses(BAD_VERSION, 404),
)
async def version_ready(name: str, version: str, models: ModelsDep) -> Response:
    """200 when this version is loaded, warmed up and serving."""
    served(models, name, version)
    return _json({"name": name, "version": version, "ready": True})


BINARY_TYPE = "application/octet-stream"
HEADER_LENGTH_PARAMETER = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "Binary tensor data extension: the size of the JSON header the body opens with (the raw "
    "tensors follow it); required with an application/octet-stream body.",
    "schema": {"type": "integer", "minimum": 0},
}
BINARY_BODY = {"schema": {"type": "string", "format": "binary"}}
BAD_INFER = (
    f"{BAD_BODY} Or the tensors are not the model's (names, datatypes, shapes, values, binary sizes, a binary "
    "body without Inference-Header-Content-Length), or the model is a retrieval model."
)
UNREAD_INFER = (
    415,
    "Content-Type is none of JSON, none or application/x-www-form-urlencoded (both read as JSON), and "
    "application/octet-stream with Inference-Header-Content-Length; JSON with a charset other than utf-8; "
    "or Content-Encoding is neither gzip "
    "nor deflate (Accept-Encoding names those read).",
)


def infer_responses(bad_request: str) -> dict[int | str, dict]:
    """An infer route's responses: JSON outputs, or with the binary tensor data extension a JSON header
    and raw tensors; its errors, the 400s named by ``bad_request``."""
    outputs = {
        "model": InferResponse,
        "description": "The outputs: JSON, or (binary outputs asked for) the JSON header then the raw tensors.",
        "content": {BINARY_TYPE: BINARY_BODY},
        "headers": {
            "Inference-Header-Content-Length": {
                "description": "With an application/octet-stream answer: the size of its JSON header.",
                "schema": {"type": "integer", "minimum": 0},
            }
        },
    }
    return {200: outputs} | error_responses((400, bad_request), 404, 413, UNREAD_INFER, 503, 504)


INFER_DOC = request_body(InferRequest, INFER_EXAMPLE, headers=(TIMEOUT_PARAMETER, HEADER_LENGTH_PARAMETER))
INFER_DOC["requestBody"]["content"][BINARY_TYPE] = BINARY_BODY


@router.post(
    "/models/{name}/infer",
    response_class=Response,
    responses=infer_responses(BAD_INFER),
    openapi_extra=INFER_DOC,
)
async def infer(
    name: str, request: Request, models: ModelsDep, settings: SettingsDep, deadline: DeadlineDep
) -> Response:
    """Run the newest served version on the given input tensors."""
    return await _infer(served(models, name, None), request, models, settings, deadline)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_class=Response,
    responses=infer_responses(f"{BAD_VERSION[1]} {BAD_INFER}"),
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
    return await _infer(served(models, name, version), request, models, settings, deadline)


@router.get(
    "/models/{name}/config", response_class=Response, responses={200: {"model": ModelConfig}} | error_responses(404)
)
async def config(name: str, request: Request, models: ModelsDep, settings: SettingsDep) -> Response:
    """The newest served version's configuration, in the shape of Triton's model configuration."""
    configs = request.app.state.manager.configs
    return _json(served_config(served(models, name, None), models, configs, settings.max_candidates))


@router.get(
    "/models/{name}/versions/{version}/config",
    response_class=Response,
    responses={200: {"model": ModelConfig}} | error_responses(BAD_VERSION, 404),
)
async def version_config(
    name: str, version: str, request: Request, models: ModelsDep, settings: SettingsDep
) -> Response:
    """One served version's configuration, in the shape of Triton's model configuration."""
    configs = request.app.state.manager.configs
    return _json(served_config(served(models, name, version), models, configs, settings.max_candidates))


@router.get(
    "/models/{name}/stats", response_class=Response, responses={200: {"model": Statistics}} | error_responses(404)
)
async def model_statistics(name: str, request: Request, models: ModelsDep) -> Response:
    """Triton's statistics extension for each served version of the model."""
    served(models, name, None)
    versions = [(name, v) for v in sorted(models.versions.get(name, {}))]
    return _json(statistics(reported(request.app.state)[0], versions))


@router.get(
    "/models/{name}/versions/{version}/stats",
    response_class=Response,
    responses={200: {"model": Statistics}} | error_responses(BAD_VERSION, 404),
)
async def version_statistics(name: str, version: str, request: Request, models: ModelsDep) -> Response:
    """Triton's statistics extension for one served version."""
    model = served(models, name, version)
    return _json(statistics(reported(request.app.state)[0], [(name, model.version)]))


def check_content_type(content_type: str | None, binary: bool) -> None:
    """415 unless the Content-Type is absent or curl's default (read as JSON), JSON, or binary data with
    the extension."""
    if content_type is None or not content_type.strip():
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == FORM_TYPE or (binary and media_type == BINARY_TYPE):
        return
    check_media_type(content_type)


async def _infer(
    model: ServedModel, request: Request, models: ServingModels, settings: Settings, deadline: float
) -> Response:
    """The infer routes' answer. A body's ``id`` (tritonclient's ``request_id``) is said on the access line as
    ``infer_id`` beside the request's own id, not taken as it: the answer's ``X-Request-ID`` went into the
    response's headers with the request's head, before the body was read (a 503 at the door, a 413 from the
    Content-Length carry it), and the body's id is any string, of any length."""
    scoring = serving.scoring(model)
    max_rows = settings.max_candidates
    scope = request.scope  # the body's id, for its access line (a failure's has one with the access log off too)
    headers = request.headers
    binary = headers.get(protocol.HEADER_LENGTH)
    check_content_type(headers.get("content-type"), binary is not None)
    declared = headers.get("content-length", "")
    largest = protocol.largest_body(scoring, max_rows)
    if declared.isdigit() and int(declared) > largest:  # refused before a byte of it is read
        raise InputError(
            413, f"body of {declared} bytes; an infer request of at most {max_rows} rows is under {largest}"
        )
    body = await request.body()
    json_size = protocol.header_length(binary, len(body))
    if (len(body) if json_size is None else json_size) <= INLINE_BODY_BYTES:  # binary tensors: read in place
        call = protocol.parse_infer(body, scoring, max_rows, json_size, scope)
    else:
        call = await run_in_threadpool(protocol.parse_infer, body, scoring, max_rows, json_size, scope)
    disconnect = watcher(request.scope, request.receive)
    outputs = await serving.run(models, scoring, call.inputs, call.rows, deadline, disconnect)
    content, header_size = protocol.render_infer(scoring, call, outputs)
    if header_size is None:
        return Response(content, media_type="application/json")
    return Response(content, media_type=BINARY_TYPE, headers={"Inference-Header-Content-Length": str(header_size)})
