"""Errors answered as JSON: every failure body is ``{"error": "<message>", "field": "<path> | null"}``.

``ApiError`` carries a status, a message and the request field at fault (``candidates[3].ad_price``,
``context.user_id``), so a client can tell what to fix. FastAPI's own validation errors and HTTP
errors (404, 405) take the same shape. A catch-all (``UnexpectedErrors``) answers 500 as a last resort
and logs the cause once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal server error"  # the whole message of a 500: the cause goes to the log only
CLIENT_CLOSED = "client closed the request"  # a 499's message: its access line's error (http/protocol.py)


class ApiError(Exception):
    """An error answered with ``status`` and a JSON body naming ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


class InputError(ApiError):
    """The request is wrong (4xx); ``field`` names the part of it at fault."""


class ModelUnavailable(ApiError):
    """A model a role needs is not loaded: 503."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


class QueueFull(ApiError):
    """A batcher cannot take the request in time: 503 at once, with Retry-After. ``reason`` is the
    metrics label: ``queue_full`` (no room) or ``overloaded`` (the expected wait passes the deadline)."""

    def __init__(
        self, retry_after_s: int = 1, reason: str = "queue_full", detail: str = "the model's queue is full"
    ) -> None:
        super().__init__(503, f"server overloaded: {detail}", headers={"Retry-After": str(retry_after_s)})
        self.reason = reason


class DeadlineExceeded(ApiError):
    """The request's deadline passed before its outputs were ready: 504. ``stage`` says where, as the place
    that raises it can tell (``before model esmm:1's queue: ...``, ``in model esmm:1's queue ...``, ``while
    model esmm:1 ran ...``): one message for every 504 ("before the model answered") was read as "the model
    is slow" where reading and encoding a large request had used the time before it reached the queue."""

    def __init__(self, stage: str) -> None:
        super().__init__(504, f"deadline exceeded {stage}")


class ClientDisconnected(ApiError):
    """The client went away; its work was dropped (499, nginx's code; nobody reads it)."""

    def __init__(self) -> None:
        super().__init__(499, CLIENT_CLOSED)


class ModelRunFailed(ApiError):
    """The model's run of the batch holding the request failed: 500 for each request in it. The batcher
    logged the failure once, with its traceback (each request logged it again: a failed batch of ten
    requests wrote eleven tracebacks, naming no model)."""

    def __init__(self, label: str) -> None:
        super().__init__(500, f"{INTERNAL_ERROR}: model {label} failed to run the batch holding this request")


class NonFiniteOutput(ApiError):
    """The model's run gave a NaN or infinite probability for a row of the request: 500, since orjson writes NaN
    as null, which a Go ad server decodes as 0 without a word (the batcher checks each run, by its outputs' sums;
    warm-up alone did). Only the requests whose own rows hold one: one NaN-producing candidate answered 500 to
    every request batched with it."""

    def __init__(self, label: str, output: str) -> None:
        super().__init__(
            500,
            f"{INTERNAL_ERROR}: model {label} returned a non-finite score ({output} NaN or infinite) for a row of "
            "this request",
        )


class ErrorResponse(BaseModel):
    error: str = Field(description="What is wrong.")
    field: str | None = Field(description="The request field at fault, e.g. 'candidates[3].ad_price'.")


ERROR_DESCRIPTIONS = {  # a status's meaning wherever it has one; a 400's is each route's own (error_responses)
    401: "Missing or wrong bearer token.",
    404: "No such model or version is served.",
    408: "The request's headers or body did not arrive in time.",
    409: "The model could not be (re)loaded: the body names the refused versions and why.",
    413: "Body or candidate count over the limit.",
    415: "Content-Type is not application/json (or names a charset other than utf-8), or Content-Encoding is "
    "neither gzip nor deflate (Accept-Encoding names those read).",
    422: "A field is missing, unknown or of the wrong type; `field` names it.",
    500: "Admin, with several worker processes: the workers did not all do the same (the body names each one's).",
    503: "A model the request needs is not loaded, or it cannot be answered in time (with Retry-After).",
    504: "The deadline passed before the answer was ready; the message says where (before the model's queue, in it, "
    "or while the model ran).",
}
# the 400s of a route that reads a JSON body (http/body.py, content_coding.py) with a deadline (deadline_for)
BAD_BODY = (
    "Malformed JSON (NaN, Infinity and numbers out of range included), a body that does not decode from its "
    "Content-Encoding, or an X-Request-Timeout-Ms that is not a positive number of milliseconds."
)
# the headers an error status carries, declared with it (the request id and Retry-After: http/openapi_headers.py)
ERROR_HEADERS = {
    401: {
        "headers": {
            "WWW-Authenticate": {
                "description": "Bearer: the scheme to authenticate with.",
                "schema": {"type": "string"},
            }
        }
    }
}
OTHER_ERRORS = {"model": ErrorResponse, "description": "Any other failure (an internal error is a 500), in this shape."}


def error_responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict]:
    """The OpenAPI ``responses`` entries of these error statuses: a status alone takes its meaning from
    ``ERROR_DESCRIPTIONS``, a ``(status, description)`` pair says the route's own (a 400 always does: a
    bad version, a bad model name, malformed JSON are different routes' 400s). With them ``default``, any
    other failure: besides saying that every error has this shape, it keeps FastAPI from documenting a
    422 of its own ``HTTPValidationError`` shape (``{"detail": [...]}``) on each route with a path
    parameter, which this service never answers (its validation errors are this shape, and a ``str``
    path parameter fails none)."""
    responses: dict[int | str, dict] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, ERROR_DESCRIPTIONS[entry])
        responses[status] = {"model": ErrorResponse, "description": description} | ERROR_HEADERS.get(status, {})
    return responses | {"default": OTHER_ERRORS}


ECHO_CHARS = 40  # of a client's value quoted in a message (a 10,000-digit version made a 10 KB message)


def echoed(value: str) -> str:
    """``value`` as a message quotes it (its repr), cut to ``ECHO_CHARS``: a message must not grow with what
    a client sent (a gRPC status past 8 KB of metadata reached the client as RESOURCE_EXHAUSTED)."""
    shown = repr(value)
    return shown if len(shown) <= ECHO_CHARS else shown[: ECHO_CHARS - 4] + "...'"


def echoed_json(value: object) -> str:
    """A client's JSON value as a message shows it: its JSON text (``"1"``, ``1.5``, ``true``, ``null``), quoted by
    JSON alone, cut to ``ECHO_CHARS`` as ``echoed`` cuts a value (the repr of that text quoted a string twice:
    ``not '"1"'``)."""
    return cut(orjson.dumps(value).decode(), ECHO_CHARS)


def echoed_key(name: str) -> str:
    """A client's key as a field path names it (``context.<name>``, ``versions.<name>``), cut to ``ECHO_CHARS``
    as ``echoed`` cuts a quoted value: an error body's ``field`` must not grow with what a client sent either (an
    unknown 1 MB context key made a 2 MB 422, named in both its message and its field)."""
    return cut(name, ECHO_CHARS)


def cut(text: str, chars: int) -> str:
    """``text``, or its start and "..." in ``chars`` characters where it is longer."""
    return text if len(text) <= chars else text[: chars - 3] + "..."


def error_object(message: str, field: str | None = None) -> dict[str, str | None]:
    """Every error's JSON body, as an object (``error_body`` serialises it)."""
    return {"error": message, "field": field}


def error_body(message: str, field: str | None = None) -> bytes:
    return orjson.dumps(error_object(message, field))


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> Response:
    return Response(error_body(message, field), status_code=status, media_type="application/json", headers=headers)


def field_path(location: Sequence[str | int]) -> str | None:
    """``("body", "candidates", 0, "x")`` -> ``"candidates[0].x"``."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or None


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.message, error.field, error.headers)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    return error_response(422, str(first.get("msg", "invalid request")), field_path(first.get("loc", ())))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    headers = _with_head_allowed(error.headers)
    message = str(error.detail)
    if error.status_code == 405 and headers is not None and "Allow" in headers:  # Starlette said "Method Not Allowed"
        message = f"{request.method} is not allowed on {request.url.path}; it takes {headers['Allow']}"
    return error_response(error.status_code, message, headers=headers)


def _with_head_allowed(headers: dict | None) -> dict | None:
    """A 405's ``Allow`` names HEAD wherever it names GET: the app answers HEAD as GET (RFC 9110 section 9.1),
    and the routing's list (Starlette's) does not know it."""
    allowed = (headers or {}).get("Allow")
    if allowed is None:
        return headers
    methods = [method.strip() for method in allowed.split(",")]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return {**headers, "Allow": ", ".join(methods)}


class UnexpectedErrors:
    """Pure ASGI middleware, inside the status counter: an exception no handler answered is logged once,
    with its traceback, and answered 500 in JSON (when no answer has begun). As Starlette's catch-all (an
    ``Exception`` handler, which its outermost middleware runs) the 500 passed no counter: the V2 routes'
    500s never reached ``ctr_http_responses_total``; and the exception went on to uvicorn, which logged
    its traceback a second time. A client that leaves while Starlette reads its body (``request.body()``:
    the V2 infer, similarity and admin routes) is answered 499 as ``ClientDisconnected`` says, without a
    traceback: it was logged and counted as a 500, on the series a 5xx alert reads."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except ClientDisconnect:  # Starlette's, from request.body(): the client left mid-body, a 499 (was a 500)
            if not started:
                gone = ClientDisconnected()
                await error_response(gone.status, gone.message)(scope, receive, send)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                await error_response(500, INTERNAL_ERROR)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """The handlers of the errors the service answers on purpose (the catch-all is ``UnexpectedErrors``)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
