"""Model repository control (Triton-style): index, load (or reload) and unload, with a bearer token.

Mounted only when ``CTR_ADMIN_TOKEN`` is set; without it every ``/v2/repository`` request is a 404 saying
so (``off_router``, hidden from the OpenAPI schema). The token is read by FastAPI's ``HTTPBearer``, so the
OpenAPI document declares the scheme on these routes alone, and compared in constant time. A load
verifies every new version before an atomic swap; when nothing loadable is found it answers 400 and the
versions already served keep serving. With several worker processes a load or unload is done by every
worker before it is answered (sibling_admin.py). A load or unload that cannot begin within
``ADMIN_LOCK_WAIT_S``, another one under way (a read stalled on the repository's storage holds it for as long as
the storage does), is a 503 with Retry-After naming it, rather than a request that hangs. The index reads the
repository in one worker thread: on the event loop, a stat stalled on the storage froze every route.
"""

from __future__ import annotations

import hmac
from functools import partial
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from common.repository import model_names, validate_model_name, version_dir, versions
from service.deps import ManagerDep, ModelsDep, SettingsDep
from service.http.body import parse_json
from service.http.errors import ApiError, echoed, error_object, error_responses
from service.http.openapi_bodies import request_body
from service.models.base import ModelLoadError
from service.models.manager import ADMIN_LOCK_WAIT_S, ManagerBusy, ModelManager
from service.models.refusal import Refusal
from service.models.snapshot import ServingModels
from service.sibling_admin import Outcome, SiblingAdmin
from service.v2.schemas import LoadedModel, RepositoryIndexRequest, RepositoryModel, UnloadedModel

bearer = HTTPBearer(
    scheme_name="AdminToken",
    description="CTR_ADMIN_TOKEN. The model repository routes are served (and in this document) only while "
    "it is set; a missing or wrong token is a 401 with WWW-Authenticate: Bearer.",
    auto_error=False,  # its 403 (no header) and 401 are not this service's: require_token answers
)


async def require_token(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    expected = settings.admin_token.get_secret_value().encode() if settings.admin_token else b""
    given = credentials.credentials.encode() if credentials is not None else b""
    if not expected or not hmac.compare_digest(given, expected):
        raise ApiError(401, "a valid bearer token is required", "Authorization", {"WWW-Authenticate": "Bearer"})


router = APIRouter(prefix="/v2/repository", tags=["model repository"], dependencies=[Depends(require_token)])


BAD_NAME = "The model name is not one: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, whole."
REWRITTEN = (  # a served version's note in the index (manager.rewritten)
    "its files changed on disk since it was loaded: it serves what was loaded, a process started now reads the "
    "files as they are (publish a change as a new version, never over a published one)"
)
CHANGED_SINCE_REFUSED = (  # a refused version's note in the index (Refusal.files_changed)
    "its files changed on disk since: the next load (an admin load, or polling) reads them again"
)


async def _valid_name(name: str) -> str:
    try:
        return validate_model_name(name)
    except ValueError as error:
        raise ApiError(400, str(error), "name") from None


Name = Annotated[str, Depends(_valid_name)]


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.post(
    "/index",
    response_class=Response,
    responses={200: {"model": list[RepositoryModel]}}
    | error_responses((400, "The body is not JSON, or not an object whose 'ready' (optional) is a boolean."), 401),
    openapi_extra=request_body(RepositoryIndexRequest, required=False),
)
async def index(request: Request, models: ModelsDep, settings: SettingsDep, manager: ManagerDep) -> Response:
    """Every model in the repository directory, and every model served (one whose directory was removed
    still serves from memory: it was left out), with each served version and each version refused (with
    why) that is still on disk; and for a model with no version served, why (its refusals alone hid that
    it was not served). A served version's reason says what an operator would otherwise learn only from
    the log or a restart: that its directory is gone (it serves from memory) or cannot be listed, that its
    files were rewritten since it was loaded, or that the model's serving settings cannot be read, so that
    no newer version is loaded. With Triton's body
    ``{"ready": true}``, the served versions alone."""
    ready_only = _index_request(await request.body())
    entries = await run_in_threadpool(_index_entries, settings.model_repository, models, manager)
    return _json([entry for entry in entries if entry["state"] == "READY"] if ready_only else entries)


def _refusal_reason(refusal: Refusal, directory: Path) -> str:
    """A refused version's reason in the index: why the load that refused it did, and, once its files changed
    since (a version deleted and published again under its number, or a copy finished), that this reason is of
    the files that were: with polling off it stood until the next admin load, which served the version."""
    return f"{refusal.why}; {CHANGED_SINCE_REFUSED}" if refusal.files_changed(directory) else refusal.why


def _index_entries(root: Path, models: ServingModels, manager: ModelManager) -> list[dict]:
    """(thread) The index's entries, as ``index`` says."""
    names = sorted(set(model_names(root)) | set(models.versions))
    entries: list[dict] = []
    for name in names:
        served = sorted(models.versions.get(name, {}))
        try:
            on_disk, unlisted = versions(root, name), ""
        except OSError as error:  # a directory the service may not list: said, where it was a bare 500; what
            # is known of it kept, as the manager keeps its refusals
            on_disk = [*served, *(v for model, v in models.refused if model == name)]
            unlisted = f"its directory cannot be listed: {error.strerror or error}"
        held_back = manager.unreadable_settings(name) if served else ""
        for v in served:
            notes = [] if v in on_disk else ["its directory is gone from the repository: served from memory"]
            if manager.rewritten(name, v):
                notes.append(REWRITTEN)
            notes += [unlisted] if unlisted else []
            notes += [f"newer versions are not loaded: {held_back}"] if held_back else []
            entries.append({"name": name, "version": str(v), "state": "READY", "reason": "; ".join(notes)})
        refused = sorted(
            (v, _refusal_reason(refusal, version_dir(root, name, v)))
            for (model, v), refusal in models.refused.items()
            if model == name and v not in served and v in on_disk
        )
        entries.extend({"name": name, "version": str(v), "state": "UNAVAILABLE", "reason": why} for v, why in refused)
        if not served:
            reason = unlisted or (models.errors.get(name, "not loaded") if on_disk else "no versions")
            entries.append({"name": name, "state": "UNAVAILABLE", "reason": reason})
    return entries


def _index_request(body: bytes) -> bool:
    """Whether an index request asks for the ready models alone (``RepositoryIndexRequest``); no body or
    ``{}``: all. 400 when the body is not an object or its ``ready`` no boolean."""
    if not body.strip():
        return False
    data = parse_json(body)
    ready = data.get("ready", False) if type(data) is dict else None
    if type(ready) is not bool:
        raise ApiError(400, "an index request's body is a JSON object with an optional boolean 'ready'", "ready")
    return ready


async def operate(manager: ModelManager, op: str, name: str) -> Outcome:
    """A load or unload in this process: the status and JSON body to answer with.

    load: (re)load per the version policy, the old versions serving until the swap; a version the policy
    wanted but refused is a 409 naming it and why (the versions that loaded are served). poll: a load that
    polling decided on (nothing for a model unloaded on purpose). unload: stop serving every version;
    queued requests still finish. Each waits ``ADMIN_LOCK_WAIT_S`` at most for one under way: a 503 past it."""
    try:
        if op == "unload":
            await manager.unload(name, ADMIN_LOCK_WAIT_S)
            return 200, UnloadedModel(name=name, unloaded=True).model_dump()
        polled = op == "poll"
        result = await manager.load(name, polled=polled, wait_s=ADMIN_LOCK_WAIT_S)
    except ManagerBusy as busy:
        return 503, error_object(f"model {name!r} not {'unloaded' if op == 'unload' else 'loaded'}: {busy}", "name")
    except KeyError:
        return 404, error_object(f"model {name!r} is not loaded", "name")
    except ModelLoadError as error:
        served = sorted(manager.models.versions.get(name, {}))
        if served:  # the load changed nothing: what was served still is (it said "not loaded")
            return 400, error_object(f"model {name!r} not reloaded: {error} (serving versions {served})", "name")
        return 400, error_object(f"model {name!r} not loaded: {error}", "name")
    if result.refused:
        refused = "; ".join(f"version {v} refused: {r.why}" for v, r in sorted(result.refused.items()))
        return 409, error_object(f"model {name!r}: {refused} (serving versions {result.served})", "name")
    return 200, LoadedModel(name=name, versions=result.served).model_dump()


async def _everywhere(request: Request, op: str, name: str) -> Response:
    """``operate`` here, or in every worker process when there are several."""
    here = partial(operate, request.app.state.manager)
    siblings: SiblingAdmin | None = request.app.state.sibling_admin
    status, body = await (here(op, name) if siblings is None else siblings.everywhere(op, name, here))
    retry = {"Retry-After": str(request.app.state.settings.retry_after_s)} if status == 503 else None
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=retry)


BUSY = (
    "Another load or unload has run past the wait for it (a read stalled on the repository's storage holds it), or "
    "the service is stopping: the message names it; Retry-After says when to try again."
)
LOAD_400 = (
    f"{BAD_NAME} Or nothing loadable was found (the versions served, if any, still are), or the body carries "
    "load parameters (or is not a JSON object)."
)


@router.post(
    "/models/{name}/load",
    response_class=Response,
    responses={200: {"model": LoadedModel, "description": "Loaded: the versions now served."}}
    | error_responses((400, LOAD_400), 401, 409, 500, (503, BUSY)),
)
async def load(name: Name, request: Request) -> Response:
    """Load or reload a model per its version policy; the old versions serve until the swap. A version
    the policy wanted but refused is a 409 naming it and why (the versions that loaded are served). With
    several worker processes every worker has loaded when this answers (500 naming each worker's outcome
    when they differ). Triton's load parameters (a ``config`` override, ``file:`` uploads) are refused
    with a 400: the model is what its repository directory holds."""
    _refuse_load_parameters(await request.body())
    return await _everywhere(request, "load", name)


def _refuse_load_parameters(body: bytes) -> None:
    """400 when a load request's body carries parameters; an empty body, ``{}`` and empty parameters pass."""
    if not body.strip():
        return
    data = parse_json(body)
    parameters = data.get("parameters") if type(data) is dict else None
    if type(data) is not dict or (parameters is not None and type(parameters) is not dict):
        raise ApiError(400, "a load request's body is a JSON object with optional parameters", "parameters")
    if parameters:
        raise ApiError(
            400,
            f"load parameters {_shown_keys(parameters)} are not supported: a version is loaded from the model "
            "repository as written there (ctr export), never from a configuration or files sent with the load",
            "parameters",
        )


SHOWN_KEYS = 5  # of a refused load's parameters, named in its error (a message must not grow with what was sent)


def _shown_keys(parameters: dict) -> str:
    """The first ``SHOWN_KEYS`` of the parameters' keys, sorted, each cut as ``echoed`` cuts (and how many more):
    they were all quoted in full, a 1 MB key a 1 MB answer."""
    keys = sorted(parameters)
    shown = ", ".join(echoed(key) for key in keys[:SHOWN_KEYS])
    return f"[{shown}{f', and {len(keys) - SHOWN_KEYS} more' if len(keys) > SHOWN_KEYS else ''}]"


@router.post(
    "/models/{name}/unload",
    response_class=Response,
    responses={200: {"model": UnloadedModel, "description": "Unloaded."}}
    | error_responses((400, BAD_NAME), 401, (404, "The model is not loaded."), 500, (503, BUSY)),
)
async def unload(name: Name, request: Request) -> Response:
    """Stop serving every version of a model; queued requests still finish (in every worker process)."""
    return await _everywhere(request, "unload", name)


off_router = APIRouter(prefix="/v2/repository", include_in_schema=False)


@off_router.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
async def routes_off(path: str) -> Response:
    """Where the admin routes would be, without a token: a 404 that says why."""
    raise ApiError(404, "the model repository routes are off: set CTR_ADMIN_TOKEN (16 characters or more)")
