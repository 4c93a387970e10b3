"""A gRPC call's request id and its access line, as an HTTP request has them (http/request_head.py,
log_format.py), so a call an ad server kept (a DEADLINE_EXCEEDED bid) can be found in the service's log.

The id is the call's ``x-request-id`` metadata when it is one an HTTP request could carry (``acceptable_request_id``;
a call carries only one), else one the service gives it (``REQUEST_IDS``, as HTTP's): a malformed one is replaced,
not refused, for gRPC has no field to name in a refusal and a call should not fail for its tracing. It goes back
in the call's trailing metadata, ``x-request-id``, whatever the outcome.

With ``CTR_ACCESS_LOG`` (on by default) each call gets one line on ``service.grpc.access``:
``<peer> - gRPC <method> [model="<name>"] <code> duration_ms=<ms> [error="<message>"] request_id=<id>``, the
last three written by the HTTP access line's own filter (``access_line_fields``) from a scope made for the call,
so both say them alike, in text and in JSON (where ``client``, ``method``, ``model`` and ``code`` are fields too).
``duration_ms`` counts from when the handler started: grpc.aio does not say when the call's bytes arrived.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from service.http.request_head import REQUEST_ID, REQUEST_IDS, acceptable_request_id
from service.http.scope_keys import RECEIVED, SCOPE_REQUEST_ID
from service.log_format import access_level, access_line_fields, note_error

ACCESS_LOGGER = "service.grpc.access"
access_logger = logging.getLogger(ACCESS_LOGGER)
access_logger.addFilter(access_line_fields)  # duration_ms, error and request_id, as HTTP's line says them
REQUEST_ID_KEY = REQUEST_ID.decode()  # metadata keys are str


def call_request_id(metadata: Any) -> bytes:
    """The id of a call with this invocation metadata: its ``x-request-id`` if acceptable and the only one,
    else a new one."""
    given = None
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY:
            if given is not None:  # two: which one the caller keeps is anyone's guess
                return REQUEST_IDS.next_id()
            given = value if isinstance(value, bytes) else value.encode()
    return given if given is not None and acceptable_request_id(given) else REQUEST_IDS.next_id()


def call_scope(request_id: bytes) -> dict:
    """What the access line reads of a call (``access_line_fields``), started now: made only with the log on."""
    return {RECEIVED: asyncio.get_running_loop().time(), SCOPE_REQUEST_ID: request_id}


def log_call(
    scope: dict, context: Any, method: str, request: Any, code: str, status: int, error: str | None = None
) -> None:
    """The call's access line: ``code`` (a gRPC status code's name) and, for a failure, its message; at the
    level of an HTTP answer with ``status`` (the one its outcome maps from: a WARNING from 500 on)."""
    if error is not None:
        note_error(scope, error)  # cut as HTTP's are
    model = getattr(request, "model_name", None) or getattr(request, "name", None)  # ModelInfer's, or the others'
    fields = {"scope": scope, "client": context.peer(), "method": method, "code": code}
    if model:
        fields["model"] = model
        message, args = "%s - gRPC %s model=%s %s", (fields["client"], method, orjson.dumps(model).decode(), code)
    else:
        message, args = "%s - gRPC %s %s", (fields["client"], method, code)
    access_logger.log(access_level(status), message, *args, extra=fields)
