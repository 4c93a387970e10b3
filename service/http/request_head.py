"""What a request's head must say before the server reads its body, and the id a client may send with it.

RFC 9112 asks two things of the head that the parser (llhttp) lets through, each a way for the body's
framing or the request's target to mean something else to another hop (a proxy in front of the service):

- an HTTP/1.1 request carries exactly one ``Host`` field (section 3.2: a server MUST answer 400 to one
  without, or with two);
- ``Transfer-Encoding`` names only ``chunked``: ``gzip, chunked`` was framed as chunked and its
  compressed bytes handed on as the body, to be answered "not valid JSON" (section 6.1: a server that
  receives a transfer coding it does not understand SHOULD answer 501).

``X-Request-ID``: a request that carries one gets it back on its response (the usual convention of
proxies and tracing: nginx's ``$request_id``, Heroku's router), so an ad server can match an answer, a
503 at the door included, to its request in its own logs. It must be 1 to ``MAX_REQUEST_ID`` visible
ASCII characters, no spaces (Heroku's router takes 20 to 200 of a narrower set): it ends the access line,
where one with spaces wrote fields of its own (``RID-1 status=999``) and one of 20 KB a 20 KB line, and
was echoed on the response as sent; another is refused 400, naming the header (its ``field``), as is a
request that carries two (the last one was echoed, the first lost without a word).

A request that carries none is given one (``REQUEST_IDS``): ``<process>-<n>``, twelve hex digits drawn at
random in each process (each worker's own: drawn again in a forked child) and the count of ids it has
given. It goes where a caller's would: on the response and the access line (or the protocol's "refused a
request" line), so an answer a caller kept (a 400, a 504) can be found in the service's log without the
caller having sent an id, as a proxy that makes one (Envoy's ``x-request-id``, nginx's ``$request_id``)
allows. The door's 503s are counted, not logged one by one (http/shed_log.py): their ids are in no line.
Unique within a process; across processes and restarts, by the 48 random bits.

The id is read before the head's other checks: a refusal for a missing Host or a transfer coding echoed
an id that would itself have been refused (``RID-1 status=999``, 300 characters).
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import NamedTuple

REQUEST_ID = b"x-request-id"
MAX_REQUEST_ID = 200
_VISIBLE_ASCII = bytes(range(0x21, 0x7F))


class Refusal(NamedTuple):
    """Why a request's head is refused: the status, the message, and the header at fault where there is one
    (the error body's ``field``, as a refused body names its own)."""

    status: int
    message: str
    field: str | None = None


def read_head(headers: list[tuple[bytes, bytes]], http_version: str) -> tuple[Refusal | None, bytes | None]:
    """Why a request with these header fields (lower-case names, as uvicorn keeps them) is refused, or
    None; and its ``X-Request-ID``, or None."""
    hosts = ids = 0
    request_id = None
    unread_coding = None
    for key, value in headers:
        if key == b"host":
            hosts += 1
        elif key == b"transfer-encoding" and value.strip().lower() != b"chunked":
            unread_coding = value.decode("latin-1")
        elif key == REQUEST_ID:
            ids += 1
            request_id = value
    id_refusal = _request_id_refusal(request_id, ids)
    if id_refusal is not None:
        request_id = None  # never echoed: a refusal for another reason gave it back as sent
    if unread_coding is not None:
        message = (
            f"Transfer-Encoding {unread_coding!r} is not supported: send the body chunked or with a Content-Length"
        )
        return Refusal(501, message, "Transfer-Encoding"), request_id
    if hosts != 1 and http_version == "1.1":
        said = "none" if hosts == 0 else str(hosts)
        return Refusal(400, f"an HTTP/1.1 request carries exactly one Host header, this one {said}", "Host"), request_id
    return id_refusal, request_id


def _request_id_refusal(request_id: bytes | None, ids: int) -> Refusal | None:
    """Why a request's ``X-Request-ID`` header (the last of ``ids``) is refused, or None."""
    if ids > 1:
        return Refusal(400, f"a request carries at most one X-Request-ID header, this one {ids}", "X-Request-ID")
    if request_id is not None and not acceptable_request_id(request_id):
        message = f"X-Request-ID must be 1 to {MAX_REQUEST_ID} visible ASCII characters, without spaces"
        return Refusal(400, message, "X-Request-ID")
    return None


def acceptable_request_id(value: bytes) -> bool:
    """Whether ``value`` may be a request's id: 1 to ``MAX_REQUEST_ID`` visible ASCII characters, no spaces
    (it ends an access line and goes back to the caller as sent)."""
    return 0 < len(value) <= MAX_REQUEST_ID and value.translate(None, _VISIBLE_ASCII) == b""


class RequestIds:
    """A process's ids: ``next_id()`` gives the next."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self._prefix = secrets.token_hex(6).encode()
        self._count = itertools.count(1)

    def next_id(self) -> bytes:
        return b"%s-%d" % (self._prefix, next(self._count))


REQUEST_IDS = RequestIds()
os.register_at_fork(after_in_child=REQUEST_IDS.restart)  # a worker forked from the supervisor draws its own
