"""The headers every call sends: its content type, the admin token where it has one, and its
``X-Request-ID``, checked by the service's rule before anything is sent."""

from __future__ import annotations

MAX_REQUEST_ID = 200  # the service's limit on an X-Request-ID (service/http/request_head.py)


def request_headers(token: str | None = None, request_id: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if request_id is not None:
        headers["x-request-id"] = checked_request_id(request_id)
    return headers


def checked_request_id(request_id: str) -> str:
    """``request_id`` if the service takes it as an ``X-Request-ID`` (1 to ``MAX_REQUEST_ID`` visible ASCII
    characters, no spaces: service/http/request_head.py's rule, which a test holds the two to), else a
    ValueError naming it: the service would answer with an id of its own (the caller's only in its log line,
    as ``refused_request_id``), or httpx refuse a non-ASCII header, after the call had been sent. The rule is
    written here, not imported: the client does not depend on the service."""
    if not isinstance(request_id, str):
        raise ValueError(f"request_id must be text, not {type(request_id).__name__}")
    # Printable ASCII is 0x20 to 0x7E: the visible characters and the space
    visible = request_id.isascii() and request_id.isprintable() and " " not in request_id
    if visible and 0 < len(request_id) <= MAX_REQUEST_ID:
        return request_id
    shown = repr(request_id[:40]) + ("…" if len(request_id) > 40 else "")
    raise ValueError(
        f"request_id {shown} ({len(request_id)} characters) is no X-Request-ID the service takes: send 1 to "
        f"{MAX_REQUEST_ID} visible ASCII characters, without spaces"
    )
