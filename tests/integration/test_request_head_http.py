"""A request's head and a compressed body on the real server (``ctr serve``'s protocol, whose direct route
answers ``POST /v1/score``): ``X-Request-ID`` echoed, a head RFC 9112 refuses answered and counted, and a
gzip body scored as the same body sent plain."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

import httpx
import orjson

from tests.integration.test_hardening import BODY, PAYLOAD, port_of, repository, responses
from tests.support.server import running_server

JSON = {"content-type": "application/json"}


def raw_answer(url: str, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:
        raw.sendall(request)
        answer = b""
        while chunk := raw.recv(65536):  # every refusal here closes the connection
            answer += chunk
        return answer


def test_request_ids_heads_and_compressed_bodies_on_the_real_server(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false") as (url, _):
        with httpx.Client(base_url=url, timeout=10) as client:
            plain = client.post("/v1/score", content=PAYLOAD, headers=JSON | {"x-request-id": "auction-17"})
            assert plain.status_code == 200 and plain.headers["x-request-id"] == "auction-17"
            wrong = client.post("/v1/score", json=BODY | {"extra": 1}, headers={"x-request-id": "auction-18"})
            assert wrong.status_code == 422 and wrong.headers["x-request-id"] == "auction-18"
            assert client.get("/v2/health/ready", headers={"x-request-id": "probe"}).headers["x-request-id"] == "probe"
            assert "x-request-id" not in client.post("/v1/score", content=PAYLOAD, headers=JSON).headers

            packed = client.post(
                "/v1/score", content=gzip.compress(PAYLOAD), headers=JSON | {"content-encoding": "gzip"}
            )
            assert packed.status_code == 200 and packed.json()["scores"] == plain.json()["scores"]
            brotli = client.post("/v1/score", content=PAYLOAD, headers=JSON | {"content-encoding": "br"})
            assert brotli.status_code == 415 and brotli.headers["accept-encoding"] == "gzip, deflate"

        before = {code: responses(url, code) for code in (400, 501)}
        no_host = raw_answer(url, b"POST /v1/score HTTP/1.1\r\ncontent-length: %d\r\n\r\n%s" % (len(PAYLOAD), PAYLOAD))
        assert no_host.startswith(b"HTTP/1.1 400 "), no_host
        assert b"exactly one Host header" in no_host
        chunked_gzip = gzip.compress(PAYLOAD)
        framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunked_gzip), chunked_gzip)
        coded = raw_answer(
            url, b"POST /v1/score HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n" + framed
        )
        assert coded.startswith(b"HTTP/1.1 501 "), coded
        assert "gzip, chunked" in orjson.loads(coded.split(b"\r\n\r\n", 1)[1])["error"]
        assert {code: responses(url, code) - n for code, n in before.items()} == {400: 1, 501: 1}
