"""What the server's protocol adds to every route, written into the OpenAPI document, so a client generated
from it knows: the ``X-Request-ID`` a request may carry and every answer carries (http/request_head.py),
the ``Retry-After`` of a 503 (errors.py ``QueueFull``, the door's refusal in http/protocol.py), and the errors
it answers itself on any route (a bad ``X-Request-ID``, a request read too slowly, too long a URL).
FastAPI sees neither: the protocol reads and writes them below the application."""

from __future__ import annotations

from typing import Any

from service.http.errors import OTHER_ERRORS, ErrorResponse
from service.http.openapi_bodies import REFERENCE
from service.http.request_head import MAX_REQUEST_ID

REQUEST_ID_SCHEMA = {"type": "string", "pattern": f"^[!-~]{{1,{MAX_REQUEST_ID}}}$"}
REQUEST_ID_PARAMETER = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": f"The caller's id of the request: 1 to {MAX_REQUEST_ID} visible ASCII characters, no spaces, "
    "one to a request (else it is not echoed: the request is given an id of its own, and its access line says "
    "the one sent as refused_request_id). It comes back on the answer and ends the request's access line.",
    "schema": REQUEST_ID_SCHEMA,
}
REQUEST_ID_HEADER = {
    "description": "The request's X-Request-ID, or the one the service gave it (<12 hex digits>-<n>).",
    "schema": {"type": "string"},
}
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before trying again (CTR_RETRY_AFTER_S), where the 503 is an overload; "
    "absent while a model is not loaded.",
    "schema": {"type": "integer", "minimum": 1},
}
# an operation that declares no error of its own still gets the protocol's
PROTOCOL_ERRORS = {
    "description": OTHER_ERRORS["description"],
    "content": {"application/json": {"schema": {"$ref": REFERENCE.format(model=ErrorResponse.__name__)}}},
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def with_protocol_headers(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the protocol's headers on every operation: the request id as a parameter and a
    header of every response, ``Retry-After`` on each 503, and a ``default`` error answer where the operation
    declared none (changed in place, and returned)."""
    for path_item in document.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name", "").lower() == "x-request-id" for p in parameters):
                parameters.append(dict(REQUEST_ID_PARAMETER))
            responses = operation.setdefault("responses", {})
            responses.setdefault("default", dict(PROTOCOL_ERRORS))  # the protocol's own 400, 408, 414, 431
            for status, response in responses.items():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = dict(REQUEST_ID_HEADER)
                if status == "503":
                    headers["Retry-After"] = dict(RETRY_AFTER_HEADER)
    return document
