"""Each gRPC method's outcome as the code clients expect, counted in ``ctr_grpc_responses_total{code}``: a
refusal keeps the service's message and maps its HTTP status to a gRPC code (400/413/415/422 ->
INVALID_ARGUMENT, 404 -> NOT_FOUND, 503 -> UNAVAILABLE, 408/504 -> DEADLINE_EXCEEDED); anything unexpected is
logged and answered INTERNAL. Shared by the services on ``CTR_GRPC_PORT`` (server.py, health.py)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from service.http.errors import INTERNAL_ERROR, ApiError

logger = logging.getLogger(__name__)

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


def status_code(status: int) -> grpc.StatusCode:
    """The gRPC code for an HTTP status the service answers."""
    return CODES.get(status, grpc.StatusCode.INVALID_ARGUMENT if 400 <= status < 500 else grpc.StatusCode.INTERNAL)


def answered(method: Handler) -> Handler:
    """A method's ApiError as its gRPC code and message, anything unexpected as INTERNAL (logged); each
    outcome counted by code."""

    @functools.wraps(method)
    async def handle(self: Any, request: Message, context: grpc.aio.ServicerContext) -> Message:
        counts = self.app.state.metrics.grpc_responses
        try:
            response = await method(self, request, context)
        except ApiError as error:
            code = status_code(error.status)
            counts[code.name] += 1
            await context.abort(code, error.message + (f" (field {error.field})" if error.field else ""))
        except asyncio.CancelledError:  # the client left, or its deadline passed: nobody reads an answer
            counts[grpc.StatusCode.CANCELLED.name] += 1
            raise
        except Exception:
            logger.exception("unhandled error in gRPC %s", method.__name__)
            counts[grpc.StatusCode.INTERNAL.name] += 1
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR)
        counts[grpc.StatusCode.OK.name] += 1
        return response

    return handle
