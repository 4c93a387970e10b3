"""Answers that close the connection (http/protocol.py): one sent to a request waiting for ``100 Continue``
(its body unread), which said nothing of closing and read the client's next request as the body (a 413 to a
client sending its body reads on); the keep-alive hint, left off any answer that closes; and a request pipelined
behind an answer that closed the connection, which was logged 499 as if its client had left (driven over
a transport that records its writes, as tests/service/test_request_head.py does)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn

from service.http.protocol import guarded_protocol
from tests.support.recorded_connection import answered, guarded_connection, plain, statuses


async def refusing(scope: Any, receive: Any, send: Any) -> None:
    """Answers from the head alone, as a 413 from Content-Length or a 415 for a content type is answered."""
    if scope["type"] != "http":
        return
    status = 413 if scope["path"] == "/large" else 415 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"no"})


def served(app: Any, *reads: bytes, access_log: bool = False) -> tuple[bytes, bool]:
    """What one connection of the guarded protocol wrote for these reads, and whether it was closed; the
    connection is lost at the end (the client goes)."""

    async def run() -> tuple[bytes, bool]:
        config = uvicorn.Config(
            app, http=guarded_protocol(10.0, 10.0, 1.0), log_config=None, lifespan="off", access_log=access_log
        )
        connection, transport = guarded_connection(config)
        for read in reads:
            if not transport.closed:
                await answered(connection, read)
        closed = transport.closed
        connection.connection_lost(None)
        await asyncio.sleep(0)  # the tasks told of the loss end
        return b"".join(transport.writes), closed

    return asyncio.run(run())


GET = b"GET /next HTTP/1.1\r\nhost: t\r\n\r\n"


def head_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[0].lower()


def test_an_answer_to_a_request_waiting_for_100_continue_closes_the_connection() -> None:
    """RFC 9110 section 10.1.1: a server that answers before reading the whole body says whether it closes.
    It kept the connection open without a word: a client that then skipped the body (its right after a
    refusal of an ``Expect: 100-continue`` request) sent its next request, read as that body and never
    answered. Now the answer says ``Connection: close``, without the keep-alive hint, and the connection closes."""
    head = b"POST /a HTTP/1.1\r\nhost: t\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n"
    head += b"expect: 100-continue\r\n\r\n"
    response, closed = served(refusing, head, GET)
    assert len(statuses(response)) == 1 and closed, response
    assert b"\r\nconnection: close" in head_of(response) and b"keep-alive" not in head_of(response)


def test_a_413_from_content_length_reads_on_the_body_being_sent() -> None:
    """A client sending its body when the 413 comes has it read and dropped, and its next request answered on
    the same connection: closing with the body's bytes unread has the kernel reset the connection, which on a
    network can reach the client before the 413 does."""
    head = b"POST /large HTTP/1.1\r\nhost: t\r\ncontent-length: 100000\r\n\r\n"
    response, closed = served(refusing, head, b"x" * 60000, b"x" * 40000 + GET)
    assert statuses(response) == [b"413", b"200"] and not closed, response
    assert b"keep-alive: timeout=5" in head_of(response)


def test_an_answer_after_the_whole_body_keeps_the_connection() -> None:
    """A refusal whose body was read (it came with the head) is an answer like any other: the connection stays."""
    response, closed = served(refusing, b"POST /a HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}", GET)
    assert statuses(response) == [b"415", b"200"] and not closed, response
    assert b"keep-alive: timeout=5" in head_of(response)


@pytest.mark.parametrize(
    "request_",
    [b"GET /a HTTP/1.0\r\n\r\n", b"GET /a HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"],
    ids=["HTTP/1.0", "Connection: close"],
)
def test_an_answer_that_closes_the_connection_gives_no_keep_alive_hint(request_: bytes) -> None:
    """``Keep-Alive: timeout=5`` beside ``Connection: close`` promised an idle time the server does not give."""
    response, closed = served(plain, request_)
    assert statuses(response) == [b"200"] and closed
    assert b"\r\nconnection: close" in head_of(response) and b"keep-alive" not in head_of(response)


def test_a_request_behind_an_answer_that_closed_the_connection_is_not_said_to_be_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two pipelined HTTP/1.0 requests asking for keep-alive: uvicorn keeps no 1.0 connection open, so the
    first is answered with ``Connection: close`` and the second never is (RFC 9112 section 9.6). Its line said
    499 "client closed the request": the server had closed it. Now it has none."""
    caplog.set_level("INFO")
    one = b"GET /a HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"
    response, closed = served(plain, one + one, access_log=True)
    assert statuses(response) == [b"200"] and closed
    assert not [r for r in caplog.records if "499" in r.getMessage()]
