"""A request's body and its headers: media type, size limit, deadline header, and the JSON object.

Every route that takes a body goes through these functions: ``POST /v1/score`` from its plain ASGI
handler, the FastAPI routes through ``deps.py``. A ``Content-Length`` over ``CTR_MAX_BODY_BYTES`` is
answered 413 before anything is read, a chunked body as soon as it grows past the limit (the
``BodySizeLimitMiddleware`` for FastAPI routes); malformed JSON is a 400 naming the problem.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.errors import ApiError, ClientDisconnected, InputError, echoed, echoed_key, error_response

# Bodies up to this size are parsed and checked on the event loop (a 200-candidate /v1/score body in
# ~0.4 ms); larger ones in the thread pool, so a body of thousands of candidates cannot stall the loop.
INLINE_BODY_BYTES = 32 * 1024
TIMEOUT_HEADER = "x-request-timeout-ms"
# the header in the OpenAPI document of each route that reads it (deadline_for parses it: not FastAPI)
TIMEOUT_PARAMETER = {
    "name": "X-Request-Timeout-Ms",
    "in": "header",
    "required": False,
    "description": "Lowers the request's deadline (CTR_REQUEST_TIMEOUT_MS) to this many milliseconds; "
    "anything but a positive number is a 400.",
    "schema": {"type": "number", "exclusiveMinimum": 0},
}
JSON_TYPES = ("application/json",)
# the Content-Type values ad servers send most (OkHttp, .NET and Spring add the charset), each accepted by
# one set lookup where any other value is parsed
USUAL_JSON_CONTENT_TYPES = frozenset(
    f"application/json{parameter}"
    for parameter in ("", "; charset=utf-8", "; charset=UTF-8", ";charset=utf-8", ";charset=UTF-8")
)
# JSON is UTF-8 (RFC 8259 section 8.1); "utf8" is the alias MySQL and some HTTP clients write for it
UTF8_CHARSETS = frozenset({"utf-8", "utf8"})
# RFC 8259 section 8.1 lets a parser ignore one at the start; orjson refuses it, .NET and PowerShell write it
UTF8_BOM = b"\xef\xbb\xbf"


# -- headers ------------------------------------------------------------------------------------------


def check_media_type(content_type: str) -> None:
    """415 unless a Content-Type header value names JSON, and UTF-8 where it names a charset: the body is
    read as UTF-8 whatever the header says, so a ``charset=utf-16`` body was a 400 "not valid UTF-8" and a
    ``charset=iso-8859-1`` one misread or refused, the header that said why ignored."""
    if content_type in USUAL_JSON_CONTENT_TYPES:
        return
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        shown = echoed(media_type) if media_type else "none"
        raise InputError(415, f"Content-Type must be application/json, not {shown}", "Content-Type")
    if parameters:
        charset = _charset(parameters)
        if charset is not None and charset.lower() not in UTF8_CHARSETS:
            raise InputError(
                415, f"Content-Type charset must be utf-8 (JSON is UTF-8), not {echoed(charset)}", "Content-Type"
            )


def _charset(parameters: str) -> str | None:
    """The ``charset`` parameter's value (unquoted) among a media type's ``parameters``, or None."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return None


def too_large_message(max_bytes: int) -> str:
    return f"request body is larger than {max_bytes} bytes"


def declared_length_refusal(value: bytes, max_bytes: int) -> tuple[int, str] | None:
    """The status and message for a Content-Length header value that cannot be accepted, or None."""
    if not value.isdigit():
        return 400, "bad Content-Length"
    if int(value) > max_bytes:
        return 413, too_large_message(max_bytes)
    return None


def deadline_for(timeout_ms: float, asked: str | None, arrived: float | None = None) -> float:
    """The deadline on the event loop's clock: ``timeout_ms`` (or the header's lower value) from when the
    request ``arrived`` (its bytes reached the host: the scope's ``RECEIVED``, http/protocol.py) where
    the server says, else from now."""
    if asked is not None:
        try:
            value = float(asked)
        except ValueError:
            value = math.nan
        if not (value > 0 and math.isfinite(value)):
            raise InputError(
                400, "X-Request-Timeout-Ms must be a positive number of milliseconds", "X-Request-Timeout-Ms"
            )
        timeout_ms = min(timeout_ms, value)
    start = arrived if arrived is not None else asyncio.get_running_loop().time()
    return start + timeout_ms / 1000.0


def large_body_size(headers: list[tuple[bytes, bytes]], max_bytes: int, compressed: bool = False) -> int:
    """How many bytes a request's body may take when it may exceed ``INLINE_BODY_BYTES`` (its declared
    length, or ``max_bytes`` when chunked or ``compressed``: decoded, it may grow to that), else 0. A bad
    or too large length is refused later."""
    if compressed:
        return max_bytes
    chunked = False
    for key, value in headers:
        if key == b"content-length":
            return int(value) if value.isdigit() and INLINE_BODY_BYTES < int(value) <= max_bytes else 0
        if key == b"transfer-encoding":
            chunked = True
    return max_bytes if chunked else 0


# -- the body -----------------------------------------------------------------------------------------


async def read_body(receive: Receive, max_bytes: int, message: Message | None = None) -> bytes:
    """The whole request body (from its first ``message`` on, when already received); 413 as soon as it
    grows past ``max_bytes``; ClientDisconnected if the client leaves."""
    chunks: list[bytes] = []
    size = 0
    if message is None:
        message = await receive()
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


def _json_error_message(body: bytes, error: orjson.JSONDecodeError) -> str:
    where = f"line {error.lineno} column {error.colno}"
    if not body.strip():
        return "body is empty; expected a JSON object"
    if "infinity when parsed as double" in error.msg:  # orjson's words for 1e400 and 10**400
        number = body[error.pos : error.pos + 24].split(b",")[0].split(b"}")[0].split(b"]")[0].strip()
        shown = number.decode("ascii", "replace") + ("..." if len(number) >= 24 else "")
        return f"body is not valid JSON: number {shown} is out of range of a 64-bit float ({where})"
    if "not valid UTF-8" in error.msg:  # orjson says "surrogates not allowed" and points at the start
        try:
            body.decode()
        except UnicodeDecodeError as bad:
            return f"body is not valid UTF-8: byte 0x{body[bad.start]:02x} at offset {bad.start} (JSON is UTF-8)"
    if "surrogate in string" in error.msg:  # orjson's "no low", "invalid high" and "invalid low surrogate"
        escape = body[error.pos : error.pos + 6].decode("ascii", "replace")  # where the unpaired one starts
        return (
            f"body is not valid JSON: {escape} is a lone UTF-16 surrogate escape (\\ud800-\\udfff not in a pair, "
            f"as JSON.stringify writes a string cut inside an emoji) ({where}): send the character whole or U+FFFD"
        )
    token = body[error.pos : error.pos + 9].lstrip(b"-")
    if token.startswith((b"NaN", b"Infinity", b"inf")):
        return f"body is not valid JSON: NaN and Infinity are not JSON numbers ({where})"
    return f"body is not valid JSON: {error.msg} ({where})"


def parse_json(body: bytes) -> Any:
    """The body's JSON value; 400 naming the problem when it is not JSON. A UTF-8 byte order mark at the
    start is skipped, once orjson has refused the body: a body without one pays nothing for it."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if not body.startswith(UTF8_BOM):
            raise InputError(400, _json_error_message(body, error)) from None
    rest = body[len(UTF8_BOM) :]
    try:
        return orjson.loads(rest)
    except orjson.JSONDecodeError as error:
        raise InputError(400, _json_error_message(rest, error)) from None


def load_object(body: bytes, keys: frozenset[str], takes: str) -> dict[str, Any]:
    """The body as a dict: 400 for malformed JSON, 422 for a non-object or an unknown key.
    ``takes`` completes "the body takes ..." in the messages, e.g. "'context' and 'candidates'"."""
    data = parse_json(body)
    if type(data) is not dict:
        raise InputError(422, f"body must be a JSON object; it takes {takes}")
    if not keys.issuperset(data):
        unknown = next(key for key in data if key not in keys)
        raise InputError(422, f"unknown field; the body takes {takes}", echoed_key(unknown))
    return data


# -- FastAPI routes -----------------------------------------------------------------------------------


class BodySizeLimitMiddleware:
    """A pure ASGI middleware answering 413 to bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                refusal = declared_length_refusal(value, self.max_bytes)
                if refusal is not None:
                    await error_response(*refusal)(scope, receive, send)
                    return
                break

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:  # the application answered before reading everything: nothing left to say
                return
            await error_response(413, too_large_message(self.max_bytes))(scope, receive, send)


class _BodyTooLarge(Exception):
    pass
