"""A client's address as the log names it, for HTTP and gRPC alike: ``host:port`` for IPv4, ``[addr]:port`` for
IPv6 (binding.peer_shown). An audit found ``::1:44850`` on HTTP lines (where does the address end?), and
``ipv6:%5B::1%5D:39404`` / ``ipv4:127.0.0.1:39404`` on gRPC's, so one peer's ``client`` differed between them; and
an IPv4 client of the dual-stack ``::`` as ``[::ffff:127.0.0.1]:49124`` on HTTP's, ``127.0.0.1:57554`` on gRPC's."""

from __future__ import annotations

import re
import socket
import struct
from pathlib import Path

import grpc
import orjson
from tritonclient.grpc import service_pb2, service_pb2_grpc

from clients.service_process import free_port
from tests.support.server import port_of, running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually

SCORE = orjson.dumps({"context": {"user_id": "u_1"}, "candidates": [{"ad_id": "ad_3", "ad_price": 2.5}]})
IPV6_CLIENT = re.compile(r"\[::1\]:\d+")
IPV4_CLIENT = re.compile(r"127\.0\.0\.1:\d+")


def exchange(host: str, port: int, request: bytes) -> bytes:
    """The answer to ``request`` sent to ``host`` (::1 or 127.0.0.1) on a connection it closes."""
    with socket.create_connection((host, port), timeout=5) as stream:
        stream.sendall(request)
        answer = b""
        while chunk := stream.recv(65536):
            answer += chunk
    return answer


def test_http_and_grpc_lines_name_a_client_alike_on_either_family(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path / "models")
    grpc_port = free_port()
    log = tmp_path / "log"
    settings = {"ctr_model": "esmm", "host": "::", "grpc_port": str(grpc_port), "log_format": "json"}
    with running_server(tmp_path / "models", log, **settings) as (url, _):
        port = port_of(url)
        for host, family in (("::1", b"6"), ("127.0.0.1", b"4")):
            asgi = b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\nx-request-id: asgi-%s\r\nconnection: close\r\n\r\n"
            direct = b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: direct-%s"
            direct += b"\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(SCORE), SCORE)
            assert exchange(host, port, asgi % family).startswith(b"HTTP/1.1 200")
            assert exchange(host, port, direct.replace(b"%s", family, 1)).startswith(b"HTTP/1.1 200")
            assert exchange(host, port, b"FOO / HTTP/1.1\r\nhost: x\r\n\r\n").startswith(b"HTTP/1.1 501")
        for host, request_id in (("[::1]", "grpc-6"), ("127.0.0.1", "grpc-4")):
            with grpc.insecure_channel(f"{host}:{grpc_port}") as channel:
                stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
                stub.ServerLive(service_pb2.ServerLiveRequest(), metadata=[("x-request-id", request_id)], timeout=5)

    records = [orjson.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    clients = {record["request_id"]: record for record in records if "client" in record and "request_id" in record}
    for request_id, shape in (("asgi-6", IPV6_CLIENT), ("direct-6", IPV6_CLIENT), ("grpc-6", IPV6_CLIENT)):
        record = clients[request_id]
        assert shape.fullmatch(record["client"]), record
        assert record["message"].startswith(f"{record['client']} - "), record
    for request_id in ("asgi-4", "direct-4", "grpc-4"):  # the IPv4 clients of the dual-stack socket, as IPv4
        record = clients[request_id]
        assert IPV4_CLIENT.fullmatch(record["client"]), record
    refused = [record for record in records if record["message"].startswith("refused a request (501)")]
    assert len(refused) == 2 and IPV6_CLIENT.fullmatch(refused[0]["client"]), refused
    assert IPV4_CLIENT.fullmatch(refused[1]["client"]), refused
    assert all(f" from {record['client']}: " in record["message"] for record in refused)


def test_a_client_that_resets_its_connection_at_once_is_still_named(tmp_path: Path) -> None:
    """A request sent on a connection its client resets at once (SO_LINGER 0, as a bidder dropping a timed-out
    bid does): its socket no longer knows its peer by the time the server's loop makes the connection
    (``getpeername``: ENOTCONN), and its access line named no client (`` - "POST /v1/score ..." 499``). The
    address accept() returned is kept (http/protocol.py ``accepted_peer``)."""
    publish_tiny_esmm(tmp_path / "models")
    log = tmp_path / "log"
    with running_server(tmp_path / "models", log, ctr_model="esmm", log_format="json") as (url, _):
        port = port_of(url)
        for number in range(5):
            direct = b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: reset-%d"
            direct += b"\r\ncontent-length: %d\r\n\r\n%s" % (len(SCORE), SCORE)
            asgi = b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\nx-request-id: reset-asgi-%d\r\n\r\n"
            for request in (direct % number, asgi % number):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as stream:
                    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    stream.sendall(request)

        def lines() -> list[dict] | None:
            records = [orjson.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line[:1] == "{"]
            said = [record for record in records if record.get("request_id", "").startswith("reset-")]
            return said if len(said) == 10 else None

        said = eventually(lines, 5, "a line for each request")
    assert all(IPV4_CLIENT.fullmatch(record["client"]) for record in said), said
    assert all(record["message"].startswith(f"{record['client']} - ") for record in said), said
