"""An audit of the HTTP layer against RFC 9110/9112, on raw sockets against the real server (``ctr serve``'s
protocol): an answer to a request waiting for ``100 Continue`` closes the connection (the client's next
request was read as the body and never answered) and a 413 reads on the body its client sends, an answer
that closes gives no keep-alive hint, an unknown method is 501 and HTTP/2.0 is 505 (400, and served as 1.1),
the refusal lines name the client, a request pipelined behind an HTTP/1.0 answer is not logged 499, a
trailing slash is 404 naming the route without it, not a redirect to ``http://``, and the base URL answers an
index of the routes."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.support.server import port_of, running_server
from tests.support.tiny_repository import repository

GET = b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n"


def exchange(url: str, *requests: bytes) -> bytes:
    """Everything the server writes on one connection for these requests, each sent once the answers so far
    came, until it closes the connection (a socket time-out fails the test: a request was left unanswered)."""
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=3) as raw:
        answer = b""
        for request in requests:
            try:
                raw.sendall(request)
            except OSError:  # the server closed the connection after the answers before it
                break
            if request is not requests[-1]:
                answer += raw.recv(65536)
        try:
            while chunk := raw.recv(65536):
                answer += chunk
        except ConnectionResetError:  # the server closed with the next request unread: the kernel's reset
            pass
        return answer


def statuses(answer: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def test_the_audits_requests_on_the_real_server(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with running_server(repository(tmp_path / "models"), log, ctr_model="esmm", access_log="true") as (url, _):
        large = (
            b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000000\r\n\r\n"
        )
        closing = b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        early = exchange(url, large, b"x" * 5_000_000 + closing)  # the body sent after its 413: read and dropped
        assert statuses(early) == [413, 200] and b"keep-alive: timeout=" in early.split(b"\r\n\r\n", 1)[0]

        expecting = b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n"
        refused = exchange(url, expecting + b"expect: 100-continue\r\n\r\n", GET)  # no body after a refusal
        assert statuses(refused) == [415] and b"\r\nconnection: close\r\n" in refused and b"keep-alive" not in refused

        assert statuses(exchange(url, b"FOO /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n")) == [501]
        assert statuses(exchange(url, b"BREW /v1/score HTTP/1.1\r\nhost: x\r\n\r\n")) == [501]
        assert statuses(exchange(url, b"GET /v2/health/ready HTTP/2.0\r\n\r\n")) == [505]

        one_zero = b"GET /v2/health/live HTTP/1.0\r\nconnection: keep-alive\r\n\r\n"
        assert statuses(exchange(url, one_zero + one_zero)) == [200]  # uvicorn keeps no 1.0 connection

        proxied = b"%s HTTP/1.1\r\nhost: api.example.com\r\nx-forwarded-proto: https\r\ncontent-length: 2\r\n\r\n{}"
        for line in (b"GET /v2/health/ready/", b"POST /v1/score/"):  # the second on the direct route's path
            answer = exchange(
                url, proxied % line + b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )
            assert statuses(answer) == [404, 200] and b"location" not in answer.lower(), answer
            assert b"; did you mean %s?" % line.split(b" ")[1].rstrip(b"/") in answer, answer  # the route it missed

        index = exchange(url, b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")  # a browser at the base URL
        assert statuses(index) == [200] and b'"docs":"/docs"' in index and b'"POST /v1/score"' in index, index

    text = log.read_text(encoding="utf-8")
    said = r"INFO service\.http\.protocol: refused a request"  # the client's bytes at fault: no WARNING of a failure
    assert re.search(said + r" \(501\) from 127\.0\.0\.1:\d+: the request's method is not implemented", text)
    assert re.search(said + r" \(505\) from 127\.0\.0\.1:\d+: HTTP/2\.0 is not supported", text)
    assert " 499" not in text  # the second HTTP/1.0 request: the server closed its connection, no client left
