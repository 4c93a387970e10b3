"""Compressed request bodies: ``Content-Encoding: gzip`` or ``deflate``, decoded as they are received.

tritonclient sends its infer bodies so with ``request_compression_algorithm="gzip"`` (or ``"deflate"``),
as Triton's HTTP endpoint reads them; an ad server may compress a large candidate list the same way.
Every route that takes a body reads it decoded: the request's headers lose ``Content-Encoding`` and
``Content-Length`` (which counted the compressed bytes) before the app sees them, so the routes' size
limit (``CTR_MAX_BODY_BYTES``) bounds the decoded body, and the compressed one is held to it too. A
small compressed body can decode to a huge one: decoding stops as soon as the output passes the limit
(413), so no more than the limit is ever held; past ``INLINE_BODY_BYTES`` of output, a chunk is decoded
in the thread pool, off the event loop. Since its decoded size is unknown until it is read, a compressed
body takes ``CTR_MAX_BODY_BYTES`` of the large bodies' budget (``CTR_BODY_BYTES_IN_FLIGHT``) while it
is read, and only what the same body sent plain would take once it is decoded (held to the answer, a
whole share each had kept compressed requests to 4 in hand, ~1,450 req/s whatever the concurrency). Any
other coding is answered 415 with the codings read (``Accept-Encoding``, RFC 9110 section 15.5.16); data
that does not decode is a 400 naming the coding. A gzip body may hold several members one after another
(RFC 1952 section 2.2; ``cat a.gz b.gz``, or a stream flushed member by member): it decodes to their
outputs joined, as ``gzip -d`` and Python's ``gzip.decompress`` read it (up to ``MAX_MEMBERS``).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

from starlette.types import Message, Receive, Scope

from service.http.body import INLINE_BODY_BYTES, declared_length_refusal, too_large_message
from service.http.errors import InputError, echoed

# the codings read, each with zlib's window bits: gzip's header, or zlib's (RFC 9110's "deflate")
CODINGS = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}
ACCEPTED = {"accept-encoding": "gzip, deflate"}
GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of every gzip member
# input handed to zlib at a time: what follows a member's end is copied (zlib's unused_data) at most this
# much, where 200,000 empty members in one 4 MB chunk were copied whole at each one (0.7 s on the loop)
SLICE_BYTES = 16 * 1024
MAX_MEMBERS = 1024  # gzip members in one body: each costs a decoder and a few Python steps, under the GIL


class NotDecodable(Exception):
    """The body is not one the coding's decoder reads to its end (why: the exception's text)."""


class Inflater:
    """One body's decoder: output up to a length at a time, the input not yet decoded kept for the next
    call, gzip members read one after another (at most ``MAX_MEMBERS``)."""

    def __init__(self, window_bits: int) -> None:
        self.window_bits = window_bits
        self.members = window_bits == CODINGS[b"gzip"]
        self.decoder = zlib.decompressobj(window_bits)
        self.pending = b""
        self.member_count = 1

    def inflate(self, data: bytes, max_length: int) -> bytes:
        """Up to ``max_length`` (> 0) bytes decoded from what is pending and ``data``; raises zlib.error for
        data that does not decode and NotDecodable for bytes past the data's end or too many members."""
        data = self.pending + data if self.pending else data
        pieces = [data[start : start + SLICE_BYTES] for start in range(0, len(data), SLICE_BYTES)] or [b""]
        parts = []
        size = 0
        for index, piece in enumerate(pieces):
            while True:
                if size == max_length:  # zlib reads max_length 0 as no limit; what is left waits for the next call
                    self.pending = piece + b"".join(pieces[index + 1 :])
                    return b"".join(parts)
                part = self.decoder.decompress(piece, max_length - size)
                parts.append(part)
                size += len(part)
                if self.decoder.eof and self.decoder.unused_data:
                    piece = self.decoder.unused_data
                    self._next_member(piece)
                    continue
                piece = self.decoder.unconsumed_tail  # left when the output reached max_length
                if not piece:
                    break
        self.pending = b""
        return b"".join(parts)

    def _next_member(self, data: bytes) -> None:
        if not (self.members and GZIP_MAGIC.startswith(data[:2])):
            raise NotDecodable("bytes follow its compressed data")
        self.member_count += 1
        if self.member_count > MAX_MEMBERS:
            raise NotDecodable(f"more than {MAX_MEMBERS} gzip members")
        self.decoder = zlib.decompressobj(self.window_bits)

    @property
    def complete(self) -> bool:
        """The data ended where a member (or the deflate stream) ends."""
        return self.decoder.eof and not self.pending


def content_coding(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The body's content coding (lower case), or None for a body sent as it is: every ``Content-Encoding``
    field's codings but identity, in order, comma-joined (so two, ``gzip, gzip``, is no coding read)."""
    codings = [
        coding
        for key, value in headers
        if key == b"content-encoding"
        for coding in (part.strip().lower() for part in value.split(b","))
        if coding not in (b"", b"identity")
    ]
    return b", ".join(codings) if codings else None


def decoded(
    scope: Scope, receive: Receive, coding: bytes, max_bytes: int, decoded_whole: Callable[[int], None] | None = None
) -> Receive:
    """``receive`` giving the body decoded from ``coding``, the scope's headers changed to say so; 415 for
    a coding not read, 413 when the body (sent or decoded) passes ``max_bytes``; ``decoded_whole`` is told
    the decoded body's size once it is complete."""
    window_bits = CODINGS.get(coding)
    if window_bits is None:
        raise InputError(
            415,
            f"Content-Encoding {echoed(coding.decode('latin-1'))} is not supported: send the body plain, gzip or "
            "deflate",
            "Content-Encoding",
            headers=ACCEPTED,
        )
    headers = []
    for key, value in scope["headers"]:
        if key == b"content-length":
            refusal = declared_length_refusal(value, max_bytes)  # the compressed body is held to the limit too
            if refusal is not None:
                raise InputError(*refusal)
        elif key != b"content-encoding":
            headers.append((key, value))
    scope["headers"] = headers
    inflater = Inflater(window_bits)
    received = decoded_size = 0
    name = coding.decode()

    async def receive_decoded() -> Message:
        nonlocal received, decoded_size
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            raise InputError(413, too_large_message(max_bytes))
        limit = max_bytes - decoded_size + 1
        try:  # up to INLINE_BODY_BYTES of output on the loop; more (or a larger chunk) in the thread pool
            if len(chunk) <= INLINE_BODY_BYTES:
                body = inflater.inflate(chunk, min(limit, INLINE_BODY_BYTES))
                if len(body) == INLINE_BODY_BYTES < limit:  # 4 KB of zeros decoded to 4 MB on the loop: 8.7 ms
                    body += await asyncio.to_thread(inflater.inflate, b"", limit - len(body))
            else:
                body = await asyncio.to_thread(inflater.inflate, chunk, limit)
        except (zlib.error, NotDecodable) as error:
            raise InputError(400, f"body is not valid {name} data: {error}", "Content-Encoding") from None
        decoded_size += len(body)
        if decoded_size > max_bytes:  # decoding stopped one byte past the limit
            raise InputError(413, f"{too_large_message(max_bytes)} once decoded from {name}")
        more_body = message.get("more_body", False)
        if not more_body and not inflater.complete:
            raise InputError(
                400, f"body is not valid {name} data: it ends before its compressed data", "Content-Encoding"
            )
        if not more_body and decoded_whole is not None:
            decoded_whole(decoded_size)
        return {"type": "http.request", "body": body, "more_body": more_body}

    return receive_decoded
