"""What a request's head must say before the server reads its body, and the id a client may send with it.

RFC 9112 asks two things of the head that the parser (llhttp) lets through, each a way for the body's
framing or the request's target to mean something else to another hop (a proxy in front of the service),
and RFC 9110 a third:

- an HTTP/1.1 request carries exactly one ``Host`` field (section 3.2: a server MUST answer 400 to one
  without, or with two);
- ``Transfer-Encoding`` names only ``chunked``: ``gzip, chunked`` was framed as chunked and its
  compressed bytes handed on as the body, to be answered "not valid JSON" (section 6.1: a server that
  receives a transfer coding it does not understand SHOULD answer 501);
- the version's major number is 1 (section 15.6.6: 505 for a major version the server does not support):
  llhttp parses ``HTTP/2.0`` and ``HTTP/0.9`` request lines, which were served as HTTP/1.1 (and, not being
  "1.1", spared the Host rule). Checked first: the rest of a head is read by the rules of its version.

``X-Request-ID``: a request that carries one gets it back on its response (the usual convention of
proxies and tracing: nginx's ``$request_id``, Heroku's router), so an ad server can match an answer, a
503 at the door included, to its request in its own logs. It must be 1 to ``MAX_REQUEST_ID`` visible
ASCII characters, no spaces (``acceptable_request_id``; Heroku's router takes 20 to 200 of a narrower set):
it ends the access line, where one with spaces wrote fields of its own (``RID-1 status=999``) and one of
20 KB a 20 KB line, and is echoed on the response. Two are read as one field (RFC 9110 section 5.3: a
field's lines join with ", "), which has a space: the last one was echoed, the first lost without a word.
An id that breaks the rule is neither echoed nor refused: the request is given one of its own, as one that
carried none, and served as usual, as Heroku's router does. It was answered 400, so a bug in the ad
server's id generator, or a proxy that adds a second header, failed every bid over a header that serves
only tracing. The value sent is kept for the request's access line (and the protocol's "refused a
request" line, where the head is refused for another reason): ``refused_request_id="<value>"``, quoted and
cut (log_format.py), so a line the ad server's id names can still be found.

A request that carries none is given one (``REQUEST_IDS``): ``<process>-<n>``, twelve hex digits drawn at
random in each process (each worker's own: drawn again in a forked child) and the count of ids it has
given. It goes where a caller's would: on the response and the access line (or the protocol's "refused a
request" line), so an answer a caller kept (a 400, a 504) can be found in the service's log without the
caller having sent an id, as a proxy that makes one (Envoy's ``x-request-id``, nginx's ``$request_id``)
allows. The door's 503s are counted, not logged one by one (http/shed_log.py): their ids are in no line.
Unique within a process; across processes and restarts, by the 48 random bits.

A head refused for another reason (a missing Host, a transfer coding) holds to the same rule: its refusal
echoed an id that breaks it as sent (``RID-1 status=999``, 300 characters). The W3C ``traceparent`` is read
in the same pass over the fields (http/trace_context.py): a valid one names the caller's trace on the
request's lines, and one that is absent or invalid costs nothing more.
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import NamedTuple

from service.http.errors import echoed
from service.http.trace_context import TRACEPARENT, trace_parent

REQUEST_ID = b"x-request-id"
MAX_REQUEST_ID = 200
_VISIBLE_ASCII = bytes(range(0x21, 0x7F))


class Refusal(NamedTuple):
    """Why a request's head is refused: the status, the message, and the header at fault where there is one
    (the error body's ``field``, as a refused body names its own)."""

    status: int
    message: str
    field: str | None = None


# what the protocol takes from a request's head (read_head): why it is refused (or None); its X-Request-ID
# when it carried an acceptable one (echoed and logged); the one it carried that breaks the rule (logged
# only); its valid W3C traceparent (logged only). A plain tuple: a NamedTuple's took 0.2 µs more a request
Head = tuple[Refusal | None, bytes | None, bytes | None, bytes | None]


def read_head(headers: list[tuple[bytes, bytes]], http_version: str) -> Head:
    """What a request with these header fields (lower-case names, as uvicorn keeps them) says and why it is
    refused, read in one pass over them."""
    hosts = 0
    request_id = refused_request_id = traceparent = unread_coding = None
    for key, value in headers:
        if key == b"host":
            hosts += 1
        elif key == b"transfer-encoding" and value.strip().lower() != b"chunked":
            unread_coding = value.decode("latin-1")
        elif key == REQUEST_ID:
            request_id = value if request_id is None else b"%s, %s" % (request_id, value)  # one field (RFC 9110 5.3)
        elif key == TRACEPARENT:
            traceparent = value if traceparent is None else b""  # two name no parent: b"" is never valid
    if request_id is not None and not acceptable_request_id(request_id):
        refused_request_id, request_id = request_id, None  # never echoed, nor refused: the request gets its own
    if traceparent is not None:
        traceparent = trace_parent(traceparent)
    refusal = None
    if http_version != "1.1" and http_version != "1.0":  # llhttp parses no other 1.x: only 0.9 and 2.0
        refusal = Refusal(505, f"HTTP/{http_version} is not supported: send HTTP/1.1")
    elif unread_coding is not None:
        message = (
            f"Transfer-Encoding {echoed(unread_coding)} is not supported: send the body chunked or with a "
            "Content-Length"
        )
        refusal = Refusal(501, message, "Transfer-Encoding")
    elif hosts != 1 and http_version == "1.1":
        said = "none" if hosts == 0 else str(hosts)
        refusal = Refusal(400, f"an HTTP/1.1 request carries exactly one Host header, this one {said}", "Host")
    return refusal, request_id, refused_request_id, traceparent


def acceptable_request_id(value: bytes) -> bool:
    """Whether an ``X-Request-ID`` value is one the service echoes and logs as the request's id: 1 to
    ``MAX_REQUEST_ID`` visible ASCII characters, no spaces (the module's text says why)."""
    return 0 < len(value) <= MAX_REQUEST_ID and not value.translate(None, _VISIBLE_ASCII)


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
