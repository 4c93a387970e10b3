"""``POST /v1/score`` answered by the service's connection itself (http/protocol.py's direct routes).

Under ``python -m service`` a request with a declared small body goes the direct way; the same request
sent chunked goes through the ASGI app (the direct routes take only declared lengths). Both must answer
alike, byte for byte but the Date header, for good and bad requests; pipelined requests are answered in
order; ``Connection: close`` closes; the responses are counted and logged as the app's are.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.access_log import given_id
from tests.support.server import port_of, running_server
from tests.support.tiny_model import publish_tiny_esmm

GOOD = orjson.dumps({"context": {"user_id": "u_1"}, "candidates": [{"ad_id": "ad_3", "ad_price": 2.5}]})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(repository, log, ctr_model="esmm") as (url, process):
        yield port_of(url), log
    assert process.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def request(body: bytes, headers: dict[str, str] | None = None, chunked: bool = False) -> bytes:
    """One POST /v1/score, its body declared by Content-Length (direct) or sent chunked (ASGI)."""
    lines = ["POST /v1/score HTTP/1.1", "Host: test"]
    lines += [f"{name}: {value}" for name, value in {"Content-Type": "application/json", **(headers or {})}.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + payload


def read_response(stream: socket.socket, buffer: bytearray) -> tuple[int, dict[bytes, bytes], bytes]:
    """One response from the socket (its bytes past it stay in ``buffer``): status, headers, body."""
    while b"\r\n\r\n" not in buffer:
        chunk = stream.recv(65536)
        assert chunk, "the connection closed before a response"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers[b"content-length"])
    while len(rest) < length:
        chunk = stream.recv(65536)
        assert chunk, "the connection closed inside a response body"
        rest += chunk
    buffer[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


def exchange(port: int, data: bytes, answers: int = 1) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as stream:
        stream.sendall(data)
        buffer = bytearray()
        return [read_response(stream, buffer) for _ in range(answers)]


CASES = {
    "scores": (GOOD, {}),
    "malformed JSON": (b'{"candidates": [', {}),
    "unknown field": (b'{"candidates": [{"ad_id": "a"}], "user": 1}', {}),
    "no candidates": (b'{"candidates": []}', {}),
    "not JSON": (GOOD, {"Content-Type": "text/plain"}),
    "bad time-out header": (GOOD, {"X-Request-Timeout-Ms": "soon"}),
    "empty body": (b"", {}),
}


@pytest.mark.parametrize("case", CASES)
def test_the_direct_route_answers_as_the_app_does(served: tuple[int, Path], case: str) -> None:
    port, _ = served
    body, headers = CASES[case]
    (direct,) = exchange(port, request(body, headers))
    (through_app,) = exchange(port, request(body, headers, chunked=True))
    assert direct[0] == through_app[0], (direct, through_app)
    assert direct[2] == through_app[2]
    own = (b"date", b"x-request-id")  # each answer's: the time, and the id the service gave the request
    assert all(given_id(answer[1][b"x-request-id"].decode()) for answer in (direct, through_app))
    without_own = [{k: v for k, v in answer[1].items() if k not in own} for answer in (direct, through_app)]
    assert without_own[0] == without_own[1]
    assert (direct[0] == 200) == (case == "scores")
    if case == "scores":
        assert orjson.loads(direct[2])["models"]["ctr"] == {"name": "esmm", "version": 1}
        assert direct[1][b"keep-alive"] == b"timeout=5"


def test_pipelined_requests_are_answered_in_order(served: tuple[int, Path]) -> None:
    port, _ = served
    candidates = [{"ad_id": "ad_9", "ad_price": 0.5}, {"ad_id": "ad_3", "ad_price": 2.5}]
    other = orjson.dumps({"context": {"user_id": "u_1"}, "candidates": candidates})
    data = request(GOOD) + request(b'{"candidates": 3}') + request(other) + request(GOOD, chunked=True)
    answers = exchange(port, data, answers=4)
    assert [status for status, _, _ in answers] == [200, 422, 200, 200]
    first, third = orjson.loads(answers[0][2])["scores"], orjson.loads(answers[2][2])["scores"]
    assert len(first) == 1 and len(third) == 2
    assert third[1] == first[0]  # the same candidate, scored in another request (and batch)
    assert answers[3][2] == answers[0][2]


def test_connection_close_is_honoured(served: tuple[int, Path]) -> None:
    port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as stream:
        stream.sendall(request(GOOD, {"Connection": "close"}))
        status, headers, _ = read_response(stream, bytearray())
        assert status == 200 and headers[b"connection"] == b"close"
        assert stream.recv(1) == b""  # closed by the server


def test_a_client_gone_before_its_answer_leaves_the_server_whole(served: tuple[int, Path]) -> None:
    port, _ = served
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=10.0) as stream:
            stream.sendall(request(GOOD))  # and closed at once, the answer unread
    (answer,) = exchange(port, request(GOOD))
    assert answer[0] == 200


def test_direct_answers_are_counted_and_logged(served: tuple[int, Path]) -> None:
    port, log = served

    def count(status: int) -> int:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10.0).text
        found = re.search(rf'http_responses_total{{code="{status}"}} (\d+)', text)
        return int(found.group(1)) if found else 0

    ok, unsupported, unprocessable = count(200), count(415), count(422)
    not_json = request(GOOD, {"Content-Type": "text/plain"})
    exchange(port, request(GOOD) + request(b'{"candidates": 3}') + not_json + request(GOOD), answers=4)
    assert count(415) == unsupported + 1
    assert count(422) == unprocessable + 1
    assert count(200) >= ok + 2  # and the /metrics requests' own
    assert '"POST /v1/score HTTP/1.1" 200' in log.read_text()
    assert "Traceback" not in log.read_text()
