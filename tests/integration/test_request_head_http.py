"""A request's head and a compressed body on the real server (``ctr serve``'s protocol, whose direct route
answers ``POST /v1/score``): ``X-Request-ID`` echoed, a head RFC 9112 refuses answered and counted, and a
gzip body scored as the same body sent plain."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

import httpx
import orjson

from tests.support.access_log import given_id
from tests.support.harden_requests import BODY, PAYLOAD
from tests.support.metrics import responses
from tests.support.server import port_of, running_server
from tests.support.tiny_repository import repository
from tests.support.v2_bodies import binary_body, json_body

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
            assert given_id(client.post("/v1/score", content=PAYLOAD, headers=JSON).headers["x-request-id"])

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


def test_an_access_line_ends_with_the_request_id_it_carried(tmp_path: Path) -> None:
    """An ad server's X-Request-ID came back on the answer but was nowhere in the service's log: each
    access line of a request that carried one now ends with it (and has it as a JSON field), on the direct
    route, an ASGI route, and pipelined requests answered one after another; a request without one is given
    one (http/request_head.py), on its answer and its line."""
    root = repository(tmp_path / "models")
    for log_format in ("json", "text"):
        log = tmp_path / f"log.{log_format}"
        with running_server(root, log, ctr_model="esmm", log_format=log_format) as (url, _):
            with httpx.Client(base_url=url, timeout=10) as client:
                client.post("/v1/score", content=PAYLOAD, headers=JSON | {"x-request-id": "direct-1"})
                client.get("/v1/models", headers={"x-request-id": "asgi-2"})
                client.post("/v1/score", content=PAYLOAD, headers=JSON)
            pipelined = (  # each started from the task of the one before it: no id of its own is no id
                b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-request-id: pipe-3\r\n\r\n"
                b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" % (len(PAYLOAD), PAYLOAD)
            )
            assert raw_answer(url, pipelined).count(b"HTTP/1.1 200 ") == 3
        text = log.read_text()
        if log_format == "json":
            lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
            access = [line for line in lines if line["logger"] == "uvicorn.access"]
            said = [(line["path"], line.get("request_id")) for line in access]
            assert all(
                line["message"].endswith(f" request_id={line['request_id']}") for line in access if "request_id" in line
            )
        else:
            access = [line for line in text.splitlines() if " uvicorn.access: " in line]
            said = [
                (line.split('"')[1].split()[1], line.rsplit("request_id=", 1)[1] if "request_id=" in line else None)
                for line in access
            ]
        said = [(path, "given" if given_id(request_id) else request_id) for path, request_id in said]
        assert [(path, request_id) for path, request_id in said if path != "/v2/health/ready"] == [
            ("/v1/score", "direct-1"),
            ("/v1/models", "asgi-2"),
            ("/v1/score", "given"),
            ("/v1/models", "pipe-3"),
            ("/v1/score", "given"),
            ("/v1/models", "given"),
        ], said


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACED = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}


def test_an_access_line_names_the_callers_own_ids(tmp_path: Path) -> None:
    """An SRE following one failed bid from the ad server found no line: an X-Request-ID with a space (or two
    of them) was answered 400, a W3C traceparent was not read, and a V2 infer body's id (tritonclient's
    request_id) was in the answer's body but not in the line, which said an id the service gave. Now each
    request is served, and its line says the caller's ids beside the one it was answered with."""
    binary, binary_headers = binary_body(id="bin-id-8")
    calls = {  # name: (path, body, headers, status)
        "spaced": ("/v1/score", PAYLOAD, JSON | {"x-request-id": "has space", "traceparent": TRACEPARENT}, 200),
        "two": ("/v1/models", None, [("x-request-id", "a1"), ("x-request-id", "a2")], 200),
        "infer": ("/v2/models/esmm/infer", orjson.dumps(orjson.loads(json_body()) | {"id": "body-id-7"}), {}, 200),
        "binary": ("/v2/models/esmm/infer", binary, binary_headers | {"traceparent": TRACEPARENT}, 200),
        "bad-tensors": ("/v2/models/esmm/infer", b'{"id": "bad-id-9", "inputs": [{"name": "x"}]}', {}, 400),
        "untraced": ("/v1/models", None, {"traceparent": TRACEPARENT.upper()}, 200),  # invalid: nothing said
    }
    answered = {}
    log = tmp_path / "log"
    with (
        running_server(repository(tmp_path / "models"), log, ctr_model="esmm", log_format="json") as (url, _),
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        for name, (path, body, headers, status) in calls.items():
            method = "GET" if body is None else "POST"
            response = client.request(method, path, content=body, headers=headers)
            assert response.status_code == status, (name, response.text)
            assert given_id(response.headers["x-request-id"]), response.headers  # never the caller's broken one
            answered[response.headers["x-request-id"]] = name
    lines = [orjson.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    said = {
        answered[line["request_id"]]: line
        for line in lines
        if line["logger"] == "uvicorn.access" and line.get("request_id") in answered
    }
    own = ("refused_request_id", "trace_id", "span_id", "infer_id")
    assert {name: {key: line[key] for key in own if key in line} for name, line in said.items()} == {
        "spaced": {"refused_request_id": "has space"} | TRACED,
        "two": {"refused_request_id": "a1, a2"},
        "infer": {"infer_id": "body-id-7"},
        "binary": {"infer_id": "bin-id-8"} | TRACED,
        "bad-tensors": {"infer_id": "bad-id-9"},
        "untraced": {},
    }
    assert said["spaced"]["message"].endswith(
        f' refused_request_id="has space" trace_id={TRACED["trace_id"]} span_id={TRACED["span_id"]}'
        f" request_id={said['spaced']['request_id']}"
    )
    assert f' infer_id="bad-id-9" request_id={said["bad-tensors"]["request_id"]}' in said["bad-tensors"]["message"]


def test_a_refused_non_ascii_request_id_is_logged_as_the_caller_wrote_it(tmp_path: Path) -> None:
    """An X-Request-ID of UTF-8 text (refused: the rule is visible ASCII) was decoded as Latin-1: ``日本`` was
    logged as ``æ—¥æœ¬``, and a search for the caller's id found nothing. Now it is read as UTF-8, a byte that is
    not UTF-8 shown as ``\\xNN``, in the access line (its text and its field) and in the protocol's refusal line."""
    sent_and_logged = [("日本-bid-1".encode(), "日本-bid-1"), (b"caf\xe9-2", "caf\\xe9-2")]  # \xe9: not UTF-8
    log = tmp_path / "log"
    with running_server(repository(tmp_path / "models"), log, ctr_model="esmm", log_format="json") as (url, _):
        for request_id, _ in sent_and_logged:
            request = b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-request-id: %s\r\nconnection: close\r\n\r\n"
            assert raw_answer(url, request % request_id).startswith(b"HTTP/1.1 200 ")
        two_hosts = b"GET /v1/models HTTP/1.1\r\nhost: x\r\nhost: y\r\nx-request-id: %s\r\n\r\n"
        assert raw_answer(url, two_hosts % sent_and_logged[0][0]).startswith(b"HTTP/1.1 400 ")  # a refusal's line
    lines = [orjson.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    said = [line for line in lines if "refused_request_id" in line]
    expected = [logged for _, logged in sent_and_logged]
    assert [line["refused_request_id"] for line in said] == [*expected, expected[0]], said
    for line, logged in zip(said, expected, strict=False):  # the two access lines' text says it too
        assert f" refused_request_id={orjson.dumps(logged).decode()} request_id=" in line["message"], line


def test_an_access_line_names_the_connection_s_peer_whatever_x_forwarded_for_says(tmp_path: Path) -> None:
    """uvicorn's proxy headers were on: a loopback client's X-Forwarded-For was logged as the client of the
    ASGI routes (the direct /v1/score route logged the peer): any client on the host chose the address."""
    with running_server(repository(tmp_path / "models"), tmp_path / "log", ctr_model="esmm") as (url, _):
        forwarded = {"x-forwarded-for": "203.0.113.77", "x-forwarded-proto": "https"}
        assert httpx.get(f"{url}/v1/models", headers=forwarded).status_code == 200
        assert httpx.post(f"{url}/v1/score", content=PAYLOAD, headers=JSON | forwarded).status_code == 200
    access = [line for line in (tmp_path / "log").read_text().splitlines() if " uvicorn.access: " in line]
    assert len(access) >= 2 and all(" 127.0.0.1:" in line and "203.0.113.77" not in line for line in access)


def test_head_on_a_get_route_sends_the_head_alone(tmp_path: Path) -> None:
    """FastAPI's GET routes answered HEAD 405 (RFC 9110 section 9.1: a server MUST support it); now the
    GET's head, with its Content-Length and no body: the next answer on the connection reads cleanly."""
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false") as (url, _):
        get = httpx.get(f"{url}/v1/models")
        answer = raw_answer(
            url,
            b"HEAD /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        head, rest = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: %d" % len(get.content) in head.lower()
        assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b'{"live":true}'), rest
