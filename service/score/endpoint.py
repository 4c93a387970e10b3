"""``POST /v1/score``: a plain ASGI handler for the hot path, and the FastAPI route that documents it.

FastAPI's route machinery (middleware stack, router matching, dependency solving, exception-handler
wrappers, telemetry) costs more CPU per request than everything the service does for a 1-candidate
request once batching has taken the model out of it (docs/serving.md). The service app
(service/app.py) therefore hands ``POST /v1/score`` straight to this handler, which does the same
things the framework would for this one route, and nothing else:

- Content-Length over ``CTR_MAX_BODY_BYTES`` (or a body that grows past it) -> 413, a non-JSON
  Content-Type -> 415, a bad ``X-Request-Timeout-Ms`` -> 400;
- the body is answered by ``pipeline.respond`` (the same function the FastAPI route calls);
- every ApiError is its JSON error body (499, unread, when the client left), anything unexpected is
  logged and answered 500 in JSON;
- each response is counted in the HTTP status metrics.

Under ``ctr serve`` the service's own protocol goes one step further (http/protocol.py's direct routes):
a request whose whole small body has arrived is handed to ``ScoreEndpoint.direct`` by the connection,
which answers it when its batches are done; no asyncio task, no ASGI message, no coroutine per request.
On the 2-core benchmark machine ASGI, not the model, was most of what a batched 1-candidate request
cost a server that only scores (docs/serving-log.md, "A floor without ASGI").

The FastAPI route (``router`` below) stays registered: it documents the operation in the OpenAPI
schema and answers when the app is mounted under a prefix, where this shortcut does not apply.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from service.deps import DeadlineDep, DisconnectDep, JsonBody
from service.http.body import (
    TIMEOUT_HEADER,
    TIMEOUT_PARAMETER,
    check_media_type,
    deadline_for,
    declared_length_refusal,
    read_body,
)
from service.http.disconnect import DEPARTURE, watcher
from service.http.errors import BAD_BODY, INTERNAL_ERROR, ApiError, error_body, error_responses
from service.http.failure_lines import FailureLines
from service.http.openapi_bodies import request_body
from service.http.protocol import Headers, Reply
from service.http.scope_keys import ANSWERED_BY_PROTOCOL, RECEIVED
from service.log_format import note_error
from service.metrics import Metrics
from service.score import pipeline
from service.score.schemas import SCORE_EXAMPLE, ScoreRequest, ScoreResponse
from service.score.versions import PINNED_VERSION_NOT_SERVED
from service.settings import Settings

logger = logging.getLogger(__name__)

PATH = "/v1/score"
NOT_SERVED = (  # the route's 404s
    f"{PINNED_VERSION_NOT_SERVED} Every request, in a service that fills no scoring role (CTR_CTR_MODEL=none "
    "CTR_CTCVR_MODEL=none: its retrieval model alone)."
)
_JSON = (b"content-type", b"application/json")
_TIMEOUT = TIMEOUT_HEADER.encode()


class ScoreEndpoint:
    """``POST /v1/score`` ahead of the framework: the ASGI callable, and ``direct`` for the service's own
    protocol; reads models and settings from the app's state."""

    def __init__(self, state: State) -> None:
        self.state = state  # models change on reload: read per request
        self.settings: Settings = state.settings
        self.metrics: Metrics = state.metrics
        self.failure_lines: FailureLines = state.failure_lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        try:
            deadline = self._deadline(scope)
            message = await receive()  # the whole body, almost always
            body = message.get("body", b"")
            if (
                message.get("more_body", False)
                or message["type"] != "http.request"
                or len(body) > settings.max_body_bytes
            ):
                body = await read_body(receive, settings.max_body_bytes, message)
            answer = await pipeline.respond(body, self.state.models, settings, deadline, watcher(scope, receive))
            status, headers, body = self._response(scope, answer, None)
        except Exception as error:
            status, headers, body = self._response(scope, None, error)
            self.failure_lines.failed(scope, status)  # a direct route's is the protocol's (_write_response)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def direct(self, scope: Scope, body: bytes, reply: Reply) -> None:
        """The request with its whole body (at most ``INLINE_BODY_BYTES``) in hand, answered through
        ``reply`` once its outcome is known: no task, no ASGI messages (http/protocol.py's direct
        routes, under ``ctr serve``). The same checks, answers and counts as the ASGI callable."""

        def answered(answer: bytes | None, error: BaseException | None) -> None:
            reply(*self._response(scope, answer, error))

        try:
            deadline = self._deadline(scope)
            pipeline.start(body, self.state.models, self.settings, deadline, scope[DEPARTURE].watch, answered)
        except Exception as error:
            answered(None, error)

    def _deadline(self, scope: Scope) -> float:
        """The request's deadline, once its headers are checked: 413 for a declared length over the
        limit, 415 for a body that is not JSON, 400 for a bad time-out header."""
        settings = self.settings
        content_type = b""
        timeout = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                refusal = declared_length_refusal(value, settings.max_body_bytes)
                if refusal is not None:
                    raise ApiError(*refusal)
            elif key == _TIMEOUT:
                timeout = value.decode("latin-1")
        if content_type != b"application/json":
            check_media_type(content_type.decode("latin-1"))
        return deadline_for(settings.request_timeout_ms, timeout, scope.get(RECEIVED))

    def _response(self, scope: Scope, answer: bytes | None, error: BaseException | None) -> tuple[int, Headers, bytes]:
        """(status, headers, body) for a request's answer or error, counted in the HTTP status metrics
        unless the protocol answered the request already (its body's time-out: a 408 counted there):
        an ApiError is its JSON error body (499 when the client left), anything else is logged and
        answered 500 in JSON."""
        status, extra = 200, None
        if answer is not None:
            body = answer
        elif isinstance(error, ApiError):
            status, extra = error.status, error.headers
            body = error_body(error.message, error.field)
            note_error(scope, error.message)
        else:
            logger.error("unhandled error on POST %s", PATH, exc_info=error)
            status = 500
            body = error_body(INTERNAL_ERROR)
            note_error(scope, INTERNAL_ERROR)
        if ANSWERED_BY_PROTOCOL not in scope:
            self.metrics.responses[status] += 1
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        if extra:
            headers += [(k.lower().encode(), str(v).encode()) for k, v in extra.items()]
        return status, headers, body


router = APIRouter(tags=["scoring"])


@router.post(
    PATH,
    summary="Score candidate ads",
    response_class=Response,
    responses={200: {"model": ScoreResponse, "description": "One score per candidate, in order."}}
    | error_responses((400, BAD_BODY), (404, NOT_SERVED), 413, 415, 422, 503, 504),
    openapi_extra=request_body(ScoreRequest, SCORE_EXAMPLE, headers=(TIMEOUT_PARAMETER,)),
)
async def score(request: Request, body: JsonBody, deadline: DeadlineDep, disconnect: DisconnectDep) -> Response:
    """Encode the features with each role model's spec, then run the models through their batchers.

    The optional `X-Request-Timeout-Ms` header lowers the deadline (`CTR_REQUEST_TIMEOUT_MS`). The optional
    `versions` field names which served version of a role model scores the request (an online experiment's
    arm); without it each role model's newest served version does.
    """
    state = request.app.state
    answer = await pipeline.respond(body, state.models, state.settings, deadline, disconnect)
    return Response(answer, media_type="application/json")
