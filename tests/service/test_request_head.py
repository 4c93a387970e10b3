"""The request head's checks (http/request_head.py) as the protocol answers them: one Host in HTTP/1.1,
no transfer coding but chunked, and ``X-Request-ID`` echoed on every answer, the door's 503 included
(driven over a transport that records its writes; tests/integration/test_request_head_http.py tries
them on the real server)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import uvicorn
from uvicorn.server import ServerState

from service.http.protocol import guarded_protocol
from service.http.request_head import read_head
from tests.service.test_request_freed import RecordingTransport, RefusingWatch, answered, plain


def written(requests: bytes, **protocol: object) -> tuple[bytes, bool, list[int]]:
    """What one connection wrote for ``requests``, whether it was closed, and the statuses it counted."""
    counted: list[int] = []

    async def run() -> tuple[bytes, bool]:
        config = uvicorn.Config(
            plain,
            http=guarded_protocol(10.0, 10.0, 1.0, on_answered=counted.append, **protocol),
            log_config=None,
            lifespan="off",
            access_log=False,
        )
        config.load()
        connection = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        connection.connection_made(transport)
        await answered(connection, requests)
        return b"".join(transport.writes), transport.closed

    return (*asyncio.run(run()), counted)


def error_of(response: bytes) -> str:
    return orjson.loads(response.split(b"\r\n\r\n", 1)[1])["error"]


@pytest.mark.parametrize(
    ("head", "words"),
    [(b"", "this one none"), (b"host: a\r\nhost: b\r\n", "this one 2")],
    ids=["none", "two"],
)
def test_an_http_1_1_request_without_exactly_one_host_is_400(head: bytes, words: str) -> None:
    response, closed, counted = written(b"GET /a HTTP/1.1\r\n" + head + b"\r\n")
    assert response.startswith(b"HTTP/1.1 400 ") and closed and counted == [400]
    assert error_of(response) == f"an HTTP/1.1 request carries exactly one Host header, {words}"


def test_http_1_0_needs_no_host() -> None:
    response, _, counted = written(b"GET /a HTTP/1.0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 ") and counted == []


# identity: obsolete since RFC 7230, as a transfer coding
@pytest.mark.parametrize("coding", [b"gzip, chunked", b"deflate,chunked", b"identity"])
def test_a_transfer_coding_other_than_chunked_is_501_naming_it(coding: bytes) -> None:
    request = b"POST /a HTTP/1.1\r\nhost: t\r\ntransfer-encoding: %s\r\n\r\n2\r\n{}\r\n0\r\n\r\n" % coding
    response, closed, counted = written(request)
    assert response.startswith(b"HTTP/1.1 501 ") and closed and counted == [501]
    assert (
        error_of(response)
        == f"Transfer-Encoding {coding.decode()!r} is not supported: send the body chunked or with a Content-Length"
    )


def test_chunked_any_case_is_read() -> None:
    request = b"POST /a HTTP/1.1\r\nhost: t\r\ntransfer-encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    assert written(request)[0].startswith(b"HTTP/1.1 200 ")


def test_a_request_id_comes_back_on_its_answer_and_only_on_its_own() -> None:
    requests = (
        b"GET /a HTTP/1.1\r\nhost: t\r\nx-request-id: 4bf92f35-77b3\r\n\r\n"
        b"GET /b HTTP/1.1\r\nhost: t\r\n\r\n"
        b"GET /c HTTP/1.1\r\nhost: t\r\nX-Request-ID: second\r\n\r\n"
    )
    response, _, _ = written(requests)
    first, second, third = response.split(b"HTTP/1.1 ")[1:]
    assert b"x-request-id: 4bf92f35-77b3\r\n" in first
    assert b"x-request-id" not in second
    assert b"x-request-id: second\r\n" in third


def test_the_doors_503_carries_the_request_id() -> None:
    request = b"POST /v1/score HTTP/1.1\r\nhost: t\r\nx-request-id: r-9\r\ncontent-length: 2\r\n\r\n{}"
    response, closed, _ = written(request, watch=RefusingWatch(0.025, 0.1), shed_paths=("/v1/score",))
    assert response.startswith(b"HTTP/1.1 503 ") and b"\r\nx-request-id: r-9\r\n" in response and not closed


def test_the_protocols_own_refusals_carry_the_request_id() -> None:
    no_host = written(b"GET /a HTTP/1.1\r\nx-request-id: r-1\r\n\r\n")[0]
    assert no_host.startswith(b"HTTP/1.1 400 ") and b"\r\nx-request-id: r-1\r\n" in no_host
    coded = b"POST /a HTTP/1.1\r\nhost: t\r\nx-request-id: r-2\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
    assert b"\r\nx-request-id: r-2\r\n" in written(coded)[0]
    coded_first = b"POST /a HTTP/1.1\r\nhost: t\r\ntransfer-encoding: gzip, chunked\r\nx-request-id: r-4\r\n\r\n"
    assert b"\r\nx-request-id: r-4\r\n" in written(coded_first)[0]  # the fields after the coding are read too


async def reading_whole(scope: dict, receive: object, send: object) -> None:
    """An app that reads the whole body before it answers."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):  # type: ignore[operator]
        pass


def test_a_late_body_is_answered_408_with_its_request_id() -> None:
    async def run() -> bytes:
        config = uvicorn.Config(reading_whole, http=guarded_protocol(10.0, 0.2, 1.0), log_config=None, lifespan="off")
        config.load()
        connection = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        connection.connection_made(transport)
        connection.data_received(b"POST /a HTTP/1.1\r\nhost: t\r\nx-request-id: r-3\r\ncontent-length: 10\r\n\r\n{}")
        await asyncio.sleep(0.6)  # past the body's 0.2 s, swept every tenth of the shortest time-out
        return b"".join(transport.writes)

    answer = asyncio.run(run())
    assert answer.startswith(b"HTTP/1.1 408 ") and b"\r\nx-request-id: r-3\r\n" in answer, answer


def test_read_head_reads_the_fields_uvicorn_keeps() -> None:
    assert read_head([(b"host", b"t"), (b"x-request-id", b"id")], "1.1") == (None, b"id")
    assert read_head([(b"host", b"t"), (b"transfer-encoding", b" chunked ")], "1.1") == (None, None)
    assert read_head([], "1.0") == (None, None)
