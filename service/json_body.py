"""Parsing a request body that must be one JSON object with known keys (shared by the routes)."""

from __future__ import annotations

from typing import Any

import orjson

from service.errors import InputError

# Bodies up to this size are parsed and checked on the event loop (a 200-candidate /v1/score body in
# ~0.4 ms); larger ones in the thread pool, so a body of thousands of candidates cannot stall the loop.
INLINE_BODY_BYTES = 32 * 1024


def _json_error_message(body: bytes, error: orjson.JSONDecodeError) -> str:
    where = f"line {error.lineno} column {error.colno}"
    if not body.strip():
        return "body is empty; expected a JSON object"
    token = body[error.pos : error.pos + 9].lstrip(b"-")
    if token.startswith((b"NaN", b"Infinity", b"inf")) or "infinity" in error.msg:
        return f"body is not valid JSON: NaN and Infinity are not JSON numbers ({where})"
    return f"body is not valid JSON: {error.msg} ({where})"


def load_object(body: bytes, keys: frozenset[str], takes: str) -> dict[str, Any]:
    """The body as a dict: 400 for malformed JSON, 422 for a non-object or an unknown key.
    ``takes`` completes "the body takes ..." in the messages, e.g. "'context' and 'candidates'"."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InputError(400, _json_error_message(body, error)) from None
    if type(data) is not dict:
        raise InputError(422, f"body must be a JSON object; it takes {takes}")
    if not keys.issuperset(data):
        unknown = next(key for key in data if key not in keys)
        raise InputError(422, f"unknown field; the body takes {takes}", unknown)
    return data
