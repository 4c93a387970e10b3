"""``POST /v1/score`` as a plain ASGI handler: the hot path without the framework's per-request layers.

FastAPI's route machinery (middleware stack, router matching, dependency solving, exception-handler
wrappers, telemetry) costs more CPU per request than everything the service does for a 1-candidate
request once batching has taken the model out of it (docs/serving.md). The service app
(service/app.py) therefore hands ``POST /v1/score`` straight to this handler, which does the same
things the framework would for this one route, and nothing else:

- Content-Length over ``CTR_MAX_BODY_BYTES`` (or a body that grows past it) -> 413, a non-JSON
  Content-Type -> 415, a bad ``X-Request-Timeout-Ms`` -> 400;
- the body is answered by ``scoring.respond`` (the same function the FastAPI route calls);
- every ApiError is its JSON error body (499, unread, when the client left), anything unexpected is
  logged and answered 500 in JSON;
- each response is counted in the HTTP status metrics.

The FastAPI route (service/routes/score.py) stays registered: it documents the operation in the
OpenAPI schema and answers when the app is mounted under a prefix, where this shortcut does not apply.
"""

from __future__ import annotations

import logging

from starlette.datastructures import State
from starlette.types import Message, Receive, Scope, Send

from service import scoring
from service.body_limit import declared_length_refusal, too_large_message
from service.deps import TIMEOUT_HEADER, check_media_type, deadline_for
from service.errors import INTERNAL_ERROR, ApiError, ClientDisconnected, error_body
from service.metrics import Metrics
from service.settings import Settings

logger = logging.getLogger(__name__)

PATH = "/v1/score"
_JSON = (b"content-type", b"application/json")
_TIMEOUT = TIMEOUT_HEADER.encode()


class ScoreEndpoint:
    """The ASGI callable for ``POST /v1/score``; reads models and settings from the app's state."""

    def __init__(self, state: State) -> None:
        self.state = state  # models change on reload: read per request
        self.settings: Settings = state.settings
        self.metrics: Metrics = state.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        status, headers = 200, None
        try:
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
            deadline = deadline_for(settings.request_timeout_ms, timeout)
            message = await receive()  # the whole body, almost always
            body = message.get("body", b"")
            if (
                message.get("more_body", False)
                or message["type"] != "http.request"
                or len(body) > settings.max_body_bytes
            ):
                body = await _read_body(receive, settings.max_body_bytes, message)
            body = await scoring.respond(body, self.state.models, settings, deadline, receive)
        except ApiError as error:
            status, headers = error.status, error.headers
            body = error_body(error.message, error.field)
        except Exception:
            logger.exception("unhandled error on POST %s", PATH)
            status = 500
            body = error_body(INTERNAL_ERROR)
        self.metrics.responses[status] += 1
        response_headers = [_JSON, (b"content-length", str(len(body)).encode())]
        if headers:
            response_headers += [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, max_bytes: int, message: Message) -> bytes:
    """The whole request body from its first ``message`` on; 413 as soon as it grows past ``max_bytes``;
    499 if the client leaves."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, too_large_message(max_bytes))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        message = await receive()
