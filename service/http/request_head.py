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
was echoed on the response as sent; another is refused 400, naming the header.
"""

from __future__ import annotations

REQUEST_ID = b"x-request-id"
MAX_REQUEST_ID = 200
_VISIBLE_ASCII = bytes(range(0x21, 0x7F))

Refusal = tuple[int, str]  # status, message


def read_head(headers: list[tuple[bytes, bytes]], http_version: str) -> tuple[Refusal | None, bytes | None]:
    """Why a request with these header fields (lower-case names, as uvicorn keeps them) is refused, or
    None; and its ``X-Request-ID``, or None."""
    hosts = 0
    request_id = None
    unread_coding = None
    for key, value in headers:
        if key == b"host":
            hosts += 1
        elif key == b"transfer-encoding" and value.strip().lower() != b"chunked":
            unread_coding = value.decode("latin-1")
        elif key == REQUEST_ID:
            request_id = value
    if unread_coding is not None:
        message = (
            f"Transfer-Encoding {unread_coding!r} is not supported: send the body chunked or with a Content-Length"
        )
        return (501, message), request_id
    if hosts != 1 and http_version == "1.1":
        said = "none" if hosts == 0 else str(hosts)
        return (400, f"an HTTP/1.1 request carries exactly one Host header, this one {said}"), request_id
    if request_id is not None and not (
        0 < len(request_id) <= MAX_REQUEST_ID and request_id.translate(None, _VISIBLE_ASCII) == b""
    ):
        message = f"X-Request-ID must be 1 to {MAX_REQUEST_ID} visible ASCII characters, without spaces"
        return (400, message), None
    return None, request_id
