"""The request head's checks (http/request_head.py) as the protocol answers them: one Host in HTTP/1.1,
no transfer coding but chunked, and ``X-Request-ID`` echoed on every answer, the door's 503 included
(driven over a transport that records its writes; tests/integration/test_request_head_http.py tries
them on the real server)."""

from __future__ import annotations

import asyncio
import os
import re

import orjson
import pytest
import uvicorn
from uvicorn.server import ServerState

from service.http.protocol import guarded_protocol
from service.http.request_head import REQUEST_IDS, acceptable_request_id, read_head
from tests.support.recorded_connection import RecordingTransport, answered, guarded_connection, plain, statuses
from tests.support.refusing_watch import RefusingWatch


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
        connection, transport = guarded_connection(config)
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
def test_a_transfer_coding_other_than_chunked_is_501_naming_it(coding: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="service.http.protocol")
    request = b"POST /a HTTP/1.1\r\nhost: t\r\ntransfer-encoding: %s\r\n\r\n2\r\n{}\r\n0\r\n\r\n" % coding
    response, closed, counted = written(request)
    assert response.startswith(b"HTTP/1.1 501 ") and closed and counted == [501]
    # its line is INFO, as every refusal of the protocol's: the client's bytes are at fault, no failure of the
    # service (an alert on warnings fired for every scanner sending an unknown method)
    assert [r.levelname for r in caplog.records if r.getMessage().startswith("refused a request (501)")] == ["INFO"]
    assert (
        error_of(response)
        == f"Transfer-Encoding {coding.decode()!r} is not supported: send the body chunked or with a Content-Length"
    )


def test_chunked_any_case_is_read() -> None:
    request = b"POST /a HTTP/1.1\r\nhost: t\r\ntransfer-encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    assert written(request)[0].startswith(b"HTTP/1.1 200 ")


def test_a_request_id_comes_back_on_its_answer_and_one_without_is_given_one() -> None:
    requests = (
        b"GET /a HTTP/1.1\r\nhost: t\r\nx-request-id: 4bf92f35-77b3\r\n\r\n"
        b"GET /b HTTP/1.1\r\nhost: t\r\n\r\n"
        b"GET /c HTTP/1.1\r\nhost: t\r\nX-Request-ID: second\r\n\r\n"
        b"GET /d HTTP/1.1\r\nhost: t\r\n\r\n"
    )
    response, _, _ = written(requests)
    first, second, third, fourth = response.split(b"HTTP/1.1 ")[1:]
    assert b"x-request-id: 4bf92f35-77b3\r\n" in first
    assert b"x-request-id: second\r\n" in third
    given = [re.findall(rb"\r\nx-request-id: ([0-9a-f]{12})-(\d+)\r\n", answer) for answer in (second, fourth)]
    assert [len(ids) for ids in given] == [1, 1], response
    (prefix, number), (same_prefix, next_number) = given[0][0], given[1][0]
    assert same_prefix == prefix and int(next_number) == int(number) + 1  # the process's count


def test_each_forked_worker_gives_ids_of_its_own() -> None:
    """Workers are forked from the supervisor after the module is imported: each draws its own prefix."""
    parent = REQUEST_IDS.next_id().split(b"-")[0]
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its id, then out at once (no pytest teardown in a forked child)
        os.write(writing, REQUEST_IDS.next_id())
        os._exit(0)
    os.close(writing)
    child = os.read(reading, 100)
    os.close(reading)
    os.waitpid(pid, 0)
    assert re.fullmatch(rb"[0-9a-f]{12}-1", child) and child.split(b"-")[0] != parent


BROKEN_IDS = [
    b"x-request-id: RID-1 status=999 fake=1\r\n",
    b"x-request-id: " + b"r" * 201 + b"\r\n",
    b"x-request-id: caf\xc3\xa9\r\n",
    b"x-request-id: tab\tin\r\n",
    b"x-request-id: a1\r\nx-request-id: a2\r\n",
]


@pytest.mark.parametrize("fields", BROKEN_IDS, ids=["spaces", "201 characters", "not ascii", "control", "two"])
def test_a_request_id_that_breaks_the_rule_is_not_echoed_and_the_request_is_served_with_one_given(
    fields: bytes,
) -> None:
    """It ended the access line as sent: spaces wrote fields of their own (``status=999``), 20 KB a 20 KB
    line (the head's bound was 64 KiB), and it came back on the response as sent; of two, the last was
    echoed. Then it was answered 400, and a bid failed over a header that only serves tracing: now the
    request is served with an id of its own, as Heroku's router does (the line says the id sent: below)."""
    response, closed, counted = written(b"GET /a HTTP/1.1\r\nhost: t\r\n" + fields + b"\r\n")
    assert response.startswith(b"HTTP/1.1 200 ") and not closed and counted == [], response
    head = response.split(b"\r\n\r\n")[0].lower() + b"\r\n"
    assert len(re.findall(rb"\r\nx-request-id: [0-9a-f]{12}-\d+\r\n", head)) == 1, head  # one given, nothing else
    assert head.count(b"x-request-id") == 1
    longest = b"GET /a HTTP/1.1\r\nhost: t\r\nx-request-id: " + b"~" * 200 + b"\r\n\r\n"
    assert b"x-request-id: " + b"~" * 200 in written(longest)[0]


@pytest.mark.parametrize(
    ("request_id", "acceptable"),
    [
        (b"a", True),
        (b"~" * 200, True),
        (b"", False),
        (b"r" * 201, False),
        (b"RID-1 status=999", False),
        (b"caf\xc3\xa9", False),
        (b"tab\tin", False),
    ],
)
def test_acceptable_request_id_is_the_rule_a_header_is_kept_by(request_id: bytes, acceptable: bool) -> None:
    """The rule gRPC's ``x-request-id`` metadata is read by too (service/v2/grpc/access.py); either is
    replaced when it breaks it, never refused."""
    assert acceptable_request_id(request_id) is acceptable
    refusal, kept, _, _ = read_head([(b"host", b"t"), (b"x-request-id", request_id)], "1.1")
    assert refusal is None and (kept == request_id) is acceptable


def test_a_bad_request_id_is_not_echoed_by_a_refusal_for_another_reason(caplog: pytest.LogCaptureFixture) -> None:
    """A request without Host (or with a transfer coding) was refused with its id echoed as sent, one that
    breaks the rule (``RID-1 status=999``); the refusal's log line names the id its answer carries, and the
    id sent and the caller's trace, quoted as an access line says them (fields too, for JSON logs)."""
    caplog.set_level("INFO", logger="service.http.protocol")
    traceparent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = written(b"GET /a HTTP/1.1\r\nx-request-id: RID-1 status=999\r\ntraceparent: %s\r\n\r\n" % traceparent)[0]
    head = response.split(b"\r\n\r\n")[0] + b"\r\n"
    assert response.startswith(b"HTTP/1.1 400 ") and b"status=999" not in head and b"traceparent" not in head
    given = re.search(rb"\r\nx-request-id: ([0-9a-f]{12}-\d+)\r\n", head)
    assert given, head
    said = [r for r in caplog.records if r.getMessage().startswith("refused a request (400)")]
    assert said and said[-1].getMessage().endswith(
        ' refused_request_id="RID-1 status=999" trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7'
        f" request_id={given[1].decode()}"
    ), said[-1].getMessage()
    assert (said[-1].refused_request_id, said[-1].trace_id) == ("RID-1 status=999", traceparent[3:35].decode())
    plain_refusal = written(b"GET /a HTTP/1.1\r\nx-request-id: r-1\r\n\r\n")[0]
    assert plain_refusal.startswith(b"HTTP/1.1 400 ")
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused a request (400)")]
    assert len(refusals) == 2 and refusals[-1].getMessage().endswith(" Host header, this one none request_id=r-1")
    assert not hasattr(refusals[-1], "refused_request_id")  # nothing more for a request without them


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


def test_a_late_body_is_answered_408_with_its_request_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="service.http.protocol")

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
    # its line names the peer, as the access line does (it named none)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("closed a connection")]
    assert said == ["closed a connection from 127.0.0.1:50000 whose request body did not arrive in time"]


def test_bad_bytes_behind_requests_in_hand_are_answered_after_them() -> None:
    """Two pipelined requests then bytes that are no request: the 400 was written at once and read as the
    first request's answer, and both answers were lost (uvicorn's httptools protocol does the same; h11's
    answers 200, 200, 400). Now they are answered in turn, then the 400 (JSON, like every other refusal)."""
    good = b"GET /a HTTP/1.1\r\nhost: t\r\n\r\n"
    response, closed, counted = written(good + good + b"GARBAGE\r\n\r\n")
    assert statuses(response) == [b"200", b"200", b"400"] and closed and counted == [400], response
    assert (
        error_of(response[response.index(b"HTTP/1.1 400 ") :]) == "the bytes received are not a valid HTTP/1.1 request"
    )
    alone, closed, _ = written(b"GARBAGE\r\n\r\n")
    assert statuses(alone) == [b"400"] and closed and b"content-type: application/json\r\n" in alone


def test_a_head_refused_behind_a_request_in_hand_gets_its_own_answer_after_it() -> None:
    """It got none: the request in hand was answered, then the connection closed (RFC 9112 section 3.2:
    a server MUST answer 400 to a request without Host)."""
    requests = b"GET /a HTTP/1.1\r\nhost: t\r\n\r\nGET /b HTTP/1.1\r\nx-request-id: r-5\r\n\r\nGET /c HTTP/1.1\r\n\r\n"
    response, closed, counted = written(requests)
    assert statuses(response) == [b"200", b"400"] and closed and counted == [400], response
    assert b"\r\nx-request-id: r-5\r\n" in response[response.index(b"HTTP/1.1 400 ") :]


def test_bytes_after_a_refusal_waiting_its_turn_are_not_read() -> None:
    """A request in hand resumes reading (uvicorn's receive() does): bytes sent after a pipelined request's
    bad body reached the stopped parser again, and its 400 was written at once, the first answer lost."""
    request = (
        b"GET /a HTTP/1.1\r\nhost: t\r\n\r\nPOST /b HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\nZZ\r\n"
    )

    async def run() -> tuple[bytes, bool]:
        config = uvicorn.Config(plain, http=guarded_protocol(10.0, 10.0, 1.0), log_config=None, lifespan="off")
        config.load()
        connection = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        connection.connection_made(transport)
        connection.data_received(request)
        connection.data_received(b"late")
        await answered(connection, b"more")
        return b"".join(transport.writes), transport.closed

    response, closed = asyncio.run(run())
    assert statuses(response) == [b"200", b"400"] and closed, response


def test_bad_bytes_in_the_body_being_read_are_that_requests_answer() -> None:
    request = b"POST /a HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    config = uvicorn.Config(reading_whole, http=guarded_protocol(10.0, 10.0, 1.0), log_config=None, lifespan="off")

    async def run() -> tuple[bytes, bool]:
        config.load()
        connection = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = RecordingTransport()
        connection.connection_made(transport)
        await answered(connection, request)
        return b"".join(transport.writes), transport.closed

    response, closed = asyncio.run(run())
    assert statuses(response) == [b"400"] and closed, response


def test_a_target_past_its_bound_is_414() -> None:
    """RFC 9112 section 3: a server SHOULD answer 414 to a request-target longer than it reads; it was a
    431 for the head as a whole (past 64 KiB), as nginx refuses a request line past 8 KB."""
    response, closed, counted = written(b"GET /" + b"a" * 8192 + b" HTTP/1.1\r\nhost: t\r\n\r\n")
    assert statuses(response) == [b"414"] and closed and counted == [414]
    assert error_of(response) == "the request's target (its URL) exceeds 8192 bytes"
    assert statuses(written(b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nhost: t\r\n\r\n")[0]) == [b"200"]


def test_the_protocols_own_answers_carry_date_and_server() -> None:
    """RFC 9110 section 6.6.1: an origin server with a clock MUST send Date; uvicorn's answers had it, the
    protocol's own 400, 414, 431, 501, 503 and 408 did not. The keep-alive hint goes only where the
    connection stays open."""
    no_host = written(b"GET /a HTTP/1.1\r\n\r\n")[0]
    shed = written(
        b"POST /v1/score HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}",
        watch=RefusingWatch(0.025, 0.1),
        shed_paths=("/v1/score",),
    )[0]
    for response in (no_host, shed):
        head = response.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nserver: uvicorn\r\n" in head and b"\r\ndate: Sat, 05 Dec 2026 10:00:00 GMT\r\n" in head
    assert b"keep-alive" not in no_host


def test_read_head_reads_the_fields_uvicorn_keeps() -> None:
    assert read_head([(b"host", b"t"), (b"x-request-id", b"id")], "1.1") == (None, b"id", None, None)
    assert read_head([(b"host", b"t"), (b"transfer-encoding", b" chunked ")], "1.1") == (None, None, None, None)
    assert read_head([], "1.0") == (None, None, None, None)
    assert read_head([(b"host", b"t"), (b"x-request-id", b"a b")], "1.1") == (None, None, b"a b", None)
    two = [(b"host", b"t"), (b"x-request-id", b"a1"), (b"x-request-id", b"a2")]
    assert read_head(two, "1.1") == (None, None, b"a1, a2", None)  # one field, as RFC 9110 joins them


def test_acceptable_request_id_is_the_rule() -> None:
    assert all(map(acceptable_request_id, [b"a", b"~" * 200, b"!#/\\\"'", b"4bf92f35-77b3"]))
    assert not any(map(acceptable_request_id, [b"", b"r" * 201, b"a b", b"a\tb", b"caf\xc3\xa9", b"a\x7f"]))


@pytest.mark.parametrize(
    "request_line", [b"FOO /v2/health/ready HTTP/1.1", b"BREW /v1/score HTTP/1.1", b"\r\nget /a HTTP/1.1"]
)
def test_a_method_the_parser_does_not_know_is_501(request_line: bytes) -> None:
    """RFC 9110 section 9.1: an origin server answers 501 to a method it does not recognize; uvicorn said
    400 "not a valid HTTP/1.1 request". Bytes that begin as no request line does stay a 400."""
    response, closed, counted = written(request_line + b"\r\nhost: t\r\n\r\n")
    assert statuses(response) == [b"501"] and closed and counted == [501], response
    assert error_of(response) == "the request's method is not implemented (the service answers GET, HEAD and POST)"
    for not_a_request in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GARBAGE\r\n\r\n"):  # a TLS hello, a word
        assert statuses(written(not_a_request)[0]) == [b"400"]


@pytest.mark.parametrize(
    ("request_line", "message"),
    [
        (b"GET /a HTTP/2.0", "HTTP/2.0 is not supported: send HTTP/1.1"),
        (b"GET /a HTTP/0.9", "HTTP/0.9 is not supported: send HTTP/1.1"),
        (b"GET /a HTTP/3.0", "the request's HTTP version is not supported: send HTTP/1.1"),  # llhttp stops at it
        (b"PRI * HTTP/2.0\r\n\r\nSM", "the request's HTTP version is not supported: send HTTP/1.1"),  # h2's preface
    ],
)
def test_a_major_version_other_than_1_is_505(request_line: bytes, message: str) -> None:
    """RFC 9110 section 15.6.6: HTTP/2.0 was served as 1.1 (and spared the Host rule, which is 1.1's)."""
    response, closed, counted = written(request_line + b"\r\n\r\n")
    assert statuses(response) == [b"505"] and closed and counted == [505], response
    assert error_of(response) == message
    assert read_head([(b"host", b"t"), (b"transfer-encoding", b"gzip")], "2.0")[0].status == 505  # checked first


def test_a_refusal_line_names_the_client(caplog: pytest.LogCaptureFixture) -> None:
    """As the access line does (host:port, a ``client`` field in JSON): a refusal's line named no peer, so
    the client sending bad bytes could not be found."""
    caplog.set_level("INFO", logger="service.http.protocol")
    written(b"GET /" + b"a" * 8192 + b" HTTP/1.1\r\nhost: t\r\n\r\n")
    (line,) = [r for r in caplog.records if r.getMessage().startswith("refused a request")]
    assert line.getMessage() == (
        "refused a request (414) from 127.0.0.1:50000: the request's target (its URL) exceeds 8192 bytes"
    )
    assert line.client == "127.0.0.1:50000"  # type: ignore[attr-defined]
