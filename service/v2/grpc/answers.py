"""Each gRPC method's outcome as the code clients expect, counted in ``ctr_grpc_responses_total{code}``: a
refusal keeps the service's message and maps its HTTP status to a gRPC code (400/413/415/422 ->
INVALID_ARGUMENT, 404 -> NOT_FOUND, 503 -> UNAVAILABLE, 408/504 -> DEADLINE_EXCEEDED; an overload's Retry-After
as ``grpc-retry-pushback-ms``; a message that does not decode, a 400); anything unexpected is logged and answered
INTERNAL. Each call's request id goes back in its trailing metadata and, with the access log on, the call is said in
one access line (access.py). Shared by the services on ``CTR_GRPC_PORT`` (server.py, health.py)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from service.http.errors import INTERNAL_ERROR, ApiError
from service.log_format import CLIENT_LEFT
from service.v2.grpc.access import REQUEST_ID_KEY, call_request_fields, call_request_id, call_scope, log_call

logger = logging.getLogger(__name__)

RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"  # gRFC A6: grpc-go's and grpc-java's retry policies wait as told

CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

Handler = Callable[[Any, Message, grpc.aio.ServicerContext], Awaitable[Message]]
Answered = Callable[[Any, bytes, grpc.aio.ServicerContext], Awaitable[Message]]  # registered with no deserializer


def status_code(status: int) -> grpc.StatusCode:
    """The gRPC code for an HTTP status the service answers."""
    return CODES.get(status, grpc.StatusCode.INVALID_ARGUMENT if 400 <= status < 500 else grpc.StatusCode.INTERNAL)


def retry_pushback(error: ApiError) -> tuple[tuple[str, str], ...]:
    """An overload's Retry-After (``CTR_RETRY_AFTER_S``) as the trailing ``grpc-retry-pushback-ms``: UNAVAILABLE
    alone told a client nothing of when to retry, where HTTP's 503 says it. A 503 without it (a model not loaded)
    gets none, as HTTP's has none."""
    retry_after = error.headers.get("Retry-After") if error.status == 503 and error.headers else None
    return () if retry_after is None else ((RETRY_PUSHBACK_KEY, str(int(retry_after) * 1000)),)


def answered(request_type: type[Message]) -> Callable[[Handler], Answered]:
    """A method called with its message of ``request_type``, decoded here from the call's bytes (the method is
    registered without a deserializer: grpc's own answered a malformed message ``UNKNOWN "Unexpected <class
    DecodeError>"``, logged a 6-line traceback, and no id, line or count); one that does not decode is a 400,
    INVALID_ARGUMENT naming the message type. A method's ApiError as its gRPC code and message, anything
    unexpected as INTERNAL (logged); each outcome counted by code, its request id in the trailing metadata
    (``x-request-id``, access.py) and said in one access line (with the access log off, a failure's only:
    http/failure_lines.py ``writes``): a cancelled call's too, once (nothing reads its answer)."""
    return functools.partial(_answered, request_type)


def _answered(request_type: type[Message], method: Handler) -> Answered:
    name = method.__name__
    decode = request_type.FromString
    undecodable = f"the request message does not decode as {request_type.DESCRIPTOR.full_name} (malformed protobuf)"

    @functools.wraps(method)
    async def handle(self: Any, data: bytes, context: grpc.aio.ServicerContext) -> Message:
        app = self.app
        counts = app.state.metrics.grpc_responses
        lines = app.state.failure_lines
        request_id, refused_request_id = call_request_id(context.invocation_metadata())
        trailing = ((REQUEST_ID_KEY, request_id.decode()),)
        scope = call_scope(request_id, refused_request_id, context.peer())  # while the call is alive
        request = None  # its access line names no model while it does not decode
        try:
            try:
                request = decode(data)  # once, where grpc's deserializer decoded it before the handler
            except DecodeError:
                raise ApiError(400, undecodable) from None
            call_request_fields(scope, request)
            response = await method(self, request, context)
        except ApiError as error:
            code = status_code(error.status)
            counts[code.name] += 1
            message = error.message + (f" (field {error.field})" if error.field else "")
            trailing += retry_pushback(error)
            if lines.writes(error.status):
                log_call(scope, name, request, code.name, error.status, message)
            await context.abort(code, message, trailing)
        except asyncio.CancelledError:  # the client left, or its deadline passed: nobody reads an answer
            counts[grpc.StatusCode.CANCELLED.name] += 1
            if lines.writes(CLIENT_LEFT):
                log_call(scope, name, request, grpc.StatusCode.CANCELLED.name, CLIENT_LEFT, cancelled_why(context))
            raise
        except Exception:
            logger.exception("unhandled error in gRPC %s", name)
            counts[grpc.StatusCode.INTERNAL.name] += 1
            if lines.writes(500):
                log_call(scope, name, request, grpc.StatusCode.INTERNAL.name, 500, INTERNAL_ERROR)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR, trailing)
        counts[grpc.StatusCode.OK.name] += 1
        context.set_trailing_metadata(trailing)
        if lines.writes(200):
            log_call(scope, name, request, grpc.StatusCode.OK.name, 200)
        return response

    return handle


def cancelled_why(context: grpc.aio.ServicerContext) -> str:
    """A cancelled call's error on its access line: whether its deadline had passed or its client left."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return "the call's deadline passed before it was answered"
    return "the client cancelled the call before it was answered"
