"""A gRPC call's request id and its access line, as an HTTP request has them (http/request_head.py,
log_format.py), so a call an ad server kept (a DEADLINE_EXCEEDED bid) can be found in the service's log.

The id is the call's ``x-request-id`` metadata when it is one an HTTP request could carry (``acceptable_request_id``;
a call carries only one), else one the service gives it (``REQUEST_IDS``, as HTTP's): a malformed one (or two) is
replaced, not refused, for a call should not fail for its tracing, and its line says the one sent as
``refused_request_id``, as HTTP's does. The id goes back in the call's trailing metadata, ``x-request-id``,
whatever the outcome. A ModelInfer's own ``id`` is on the line as ``infer_id``, as a V2 infer body's is.

With ``CTR_ACCESS_LOG`` (on by default) each call gets one line on ``service.grpc.access``:
``<peer> - gRPC <method> [model="<name>"] <code> duration_ms=<ms> [error="<message>"] request_id=<id>``, the
last three (and the caller's own ids) written by the HTTP access line's own filter (``access_line_fields``) from
a scope made for the call, so both say them alike, in text and in JSON (where ``client``, ``method``, ``model``
and ``code`` are fields too). With it off, a failure's line is still written, within the budget of HTTP's
failure lines (http/failure_lines.py ``writes``).
``duration_ms`` counts from when the handler started: grpc.aio does not say when the call's bytes arrived.
The ``<peer>`` is written as HTTP's line writes its client (``call_peer``): ``127.0.0.1:39404``,
``[::1]:39404``, where grpc's own ``ipv4:127.0.0.1:39404`` and ``ipv6:%5B::1%5D:39404`` matched no HTTP line's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote

import orjson

from service.binding import peer_shown
from service.http.request_head import REQUEST_ID, REQUEST_IDS, acceptable_request_id
from service.http.scope_keys import INFER_ID, RECEIVED, REFUSED_REQUEST_ID, SCOPE_REQUEST_ID
from service.log_format import access_level, access_line_fields, note_error

ACCESS_LOGGER = "service.grpc.access"
access_logger = logging.getLogger(ACCESS_LOGGER)
access_logger.addFilter(access_line_fields)  # duration_ms, error and request_id, as HTTP's line says them
REQUEST_ID_KEY = REQUEST_ID.decode()  # metadata keys are str
CALL_PEER = "ctr.grpc_peer"  # the call's scope's peer, as grpc says it (call_scope)
IP_PEER_PREFIXES = ("ipv4:", "ipv6:")  # grpc's URI scheme of a TCP peer (a Unix socket's, "unix:", is kept)


def call_request_id(metadata: Any) -> tuple[bytes, bytes | None]:
    """The id of a call with this invocation metadata: its ``x-request-id`` if acceptable and the only one,
    else a new one; and the one it sent that was not taken (two read as one, joined as HTTP joins a field's
    lines), for its access line's ``refused_request_id``, or None."""
    given = None
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY:
            value = value if isinstance(value, bytes) else value.encode()
            given = value if given is None else b"%s, %s" % (given, value)
    if given is None or acceptable_request_id(given):
        return given or REQUEST_IDS.next_id(), None
    return REQUEST_IDS.next_id(), given


def call_scope(request_id: bytes, refused_request_id: bytes | None, peer: str) -> dict:
    """What the access line reads of a call (``access_line_fields``, ``log_call``), started now, before its
    message is decoded: its ids, a refused ``x-request-id`` too (log_format.correlation), and its ``peer`` as
    grpc says it (``context.peer()``), read while the call is alive: once grpc has ended the call (its deadline
    passed) it says "", and the line of a DEADLINE_EXCEEDED or CANCELLED call began `` - gRPC ...``. Read on
    every call, its line written or not: it costs 0.1 µs (timeit in a handler), formatted only for a line."""
    scope = {RECEIVED: asyncio.get_running_loop().time(), SCOPE_REQUEST_ID: request_id, CALL_PEER: peer}
    if refused_request_id is not None:
        scope[REFUSED_REQUEST_ID] = refused_request_id
    return scope


def call_request_fields(scope: dict, request: Any) -> None:
    """What the call's decoded message adds to its scope: a ModelInfer's own ``id``, as ``infer_id`` (as a V2
    infer body's is)."""
    infer_id = getattr(request, "id", None)
    if infer_id:
        scope[INFER_ID] = infer_id


def log_call(scope: dict, method: str, request: Any, code: str, status: int, error: str | None = None) -> None:
    """The call's access line: ``code`` (a gRPC status code's name) and, for a failure, its message; at the
    level of an HTTP answer with ``status`` (the one its outcome maps from: a WARNING from 500 on)."""
    if error is not None:
        note_error(scope, error)  # cut as HTTP's are
    model = getattr(request, "model_name", None) or getattr(request, "name", None)  # ModelInfer's, or the others'
    fields = {"scope": scope, "client": call_peer(scope[CALL_PEER]), "method": method, "code": code}
    if model:
        fields["model"] = model
        message, args = "%s - gRPC %s model=%s %s", (fields["client"], method, orjson.dumps(model).decode(), code)
    else:
        message, args = "%s - gRPC %s %s", (fields["client"], method, code)
    access_logger.log(access_level(status), message, *args, extra=fields)


def call_peer(peer: str) -> str:
    """A call's peer (grpc's URI: ``ipv6:%5B::1%5D:39404``) as HTTP's access line names a client
    (binding.peer_shown): ``[::1]:39404``, ``127.0.0.1:39404``; one of another kind as grpc says it."""
    if not peer.startswith(IP_PEER_PREFIXES):
        return peer
    host, _, port = unquote(peer.partition(":")[2]).rpartition(":")  # grpc quotes an IPv6 address's brackets
    return peer_shown(host.removeprefix("[").removesuffix("]"), int(port))
