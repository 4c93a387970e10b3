"""An error quotes what a client sent cut short (http/errors.py ``echoed``, ``echoed_key``), in its message and
in its ``field``, on every route of the real server: a 1 MB unknown feature name was a 2 MB 422 (the name in
both), a 100 KB V2 datatype a 100 KB 400, a 20 KB Content-Type a 20 KB 415, and over gRPC a status past 8 KB
of metadata reaches the client as RESOURCE_EXHAUSTED, not the INVALID_ARGUMENT it is."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import orjson
import pytest
from tritonclient.grpc import service_pb2_grpc

from clients.service_process import free_port
from tests.support.encoded_candidates import infer_request
from tests.support.retrieval import add_tiny_esam
from tests.support.server import port_of, running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.v2_bodies import infer_body

NAME = "unknown_name_"  # the start of every long name sent, which each answer must still show
HUGE = NAME + "x" * 1_000_000  # where the body may hold it (CTR_MAX_BODY_BYTES is 4 MiB)
LONG = NAME + "x" * 100_000  # a V2 infer body is refused from 204 KB for the tiny model
HEADER = NAME + "x" * 20_000  # the request line and headers may take 64 KiB
SMALL = 2_000  # bytes an answer may take whatever the name's length
CANDIDATES = [{"ad_id": "a1", "ad_price": 1.0}]
QUERY = {"user_id": "u5", "user_segment": "s2", "device": "desktop", "query_category": "c1"}
INFER = "/v2/models/esmm/infer"


@dataclass(frozen=True)
class Service:
    url: str
    grpc: str


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository)
    add_tiny_esam(repository)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    port = free_port()
    with running_server(repository, log, ctr_model="esmm", grpc_port=str(port), access_log="false") as (url, _):
        yield Service(url, f"127.0.0.1:{port}")


def infer_with(**changed: object) -> bytes:
    """A valid infer body with its first input's keys ``changed``."""
    body = infer_body([[0, 50, 74]], [[0.0, 0.0]])
    body["inputs"][0] |= changed
    return orjson.dumps(body)


CASES = {  # name: (path, body, headers, status, the field's start)
    "context key": ("/v1/score", {"context": {HUGE: 1}, "candidates": CANDIDATES}, {}, 422, "context."),
    "candidate key": ("/v1/score", {"candidates": [{HUGE: 1}]}, {}, 422, "candidates[0]."),
    "body key": ("/v1/score", {"candidates": CANDIDATES, HUGE: 1}, {}, 422, ""),
    "versions key": ("/v1/score", {"candidates": CANDIDATES, "versions": {HUGE: 1}}, {}, 422, "versions."),
    "query key": ("/v1/similarity", {"query": {HUGE: 1}, "k": 3}, {}, 422, "query."),
    "item key": ("/v1/similarity", {"query": QUERY, "items": [{HUGE: 1}]}, {}, 422, "items[0]."),
    "V2 datatype": (INFER, infer_with(datatype=LONG), {}, 400, "inputs[0].datatype"),
    "V2 input name": (INFER, infer_with(name=LONG), {}, 400, "inputs[0].name"),
    "V2 output name": (
        INFER,
        orjson.dumps(infer_body([[0, 50, 74]], [[0.0, 0.0]], outputs=[{"name": LONG}])),
        {},
        400,
        "outputs[0].name",
    ),
    "Content-Type": (
        "/v1/score",
        {"candidates": CANDIDATES},
        {"content-type": f"application/{HEADER}"},
        415,
        "Content-Type",
    ),
    "charset": (
        "/v1/score",
        {"candidates": CANDIDATES},
        {"content-type": f"application/json; charset={HEADER}"},
        415,
        "Content-Type",
    ),
    "V2 Content-Type": (INFER, infer_with(), {"content-type": f"application/{HEADER}"}, 415, "Content-Type"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_answer_quotes_a_long_name_cut(service: Service, case: str) -> None:
    path, body, headers, status, field = CASES[case]
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = httpx.post(
        service.url + path, content=content, headers={"content-type": "application/json"} | headers, timeout=10
    )
    assert response.status_code == status, response.text[:SMALL]
    assert len(response.content) < SMALL, response.content[:SMALL]
    answer = response.json()
    if case != "body key":  # its message names no key: "unknown field; the body takes ..."
        assert NAME in answer["error"] and "xxx...'" in answer["error"], answer  # its start, quoted and cut
    assert answer["field"].startswith(field), answer
    if field.endswith("."):  # a key of the client's: the field names its start too
        assert answer["field"].startswith(field + NAME), answer


def test_a_refused_transfer_coding_is_quoted_cut(service: Service) -> None:
    """A head the protocol refuses (a transfer coding it does not read) says the coding cut short too."""
    port = port_of(service.url)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"POST /v1/score HTTP/1.1\r\nhost: x\r\ntransfer-encoding: %s\r\n\r\n" % HEADER.encode())
        answer = b""
        while chunk := raw.recv(65536):  # a refusal closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 501 ") and len(answer) < SMALL, answer[:SMALL]
    assert f"'{NAME}" in orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


def test_a_grpc_status_quotes_a_long_name_cut(service: Service) -> None:
    """Over gRPC the message is the status's details: under 8 KB of metadata, an INVALID_ARGUMENT (or the health
    service's NOT_FOUND) naming the start of what was sent."""
    typed = infer_request()
    typed.inputs[0].datatype = LONG
    named = infer_request(input_name=LONG)
    with grpc.insecure_channel(service.grpc) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        service_name = HEADER.encode()
        health_request = b"\x0a" + _varint(len(service_name)) + service_name  # HealthCheckRequest.service
        calls = {
            "datatype": (lambda: stub.ModelInfer(typed, timeout=10), grpc.StatusCode.INVALID_ARGUMENT),
            "input name": (lambda: stub.ModelInfer(named, timeout=10), grpc.StatusCode.INVALID_ARGUMENT),
            "health service": (lambda: check(health_request, timeout=10), grpc.StatusCode.NOT_FOUND),
        }
        for case, (call, code) in calls.items():
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == code, (case, refused.value.code())
            details = refused.value.details()
            assert len(details) < SMALL and f"'{NAME}" in details, (case, details[:SMALL])


def _varint(value: int) -> bytes:
    """``value`` as protobuf's base-128 varint (a length past 127 takes more than one byte)."""
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])
