"""The standard gRPC health protocol (``grpc.health.v1.Health/Check``) on the gRPC port, as grpc_health_probe,
Kubernetes ``grpc:`` probes and load balancers call it: the bytes they send, the bytes they read back (proto3's
wire format, written out here rather than through the service's own message classes)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from clients.service_process import free_port
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually

CHECK = "/grpc.health.v1.Health/Check"
SERVING, NOT_SERVING = b"\x08\x01", b"\x08\x02"  # HealthCheckResponse: field 1 (status), a varint


def request(service: str) -> bytes:
    """HealthCheckRequest: field 1 (service), length-delimited; the empty string is no bytes at all."""
    name = service.encode()
    return b"\x0a" + bytes([len(name)]) + name if name else b""


def checked(target: str, service: str = "") -> bytes:
    with grpc.insecure_channel(target) as channel:
        return channel.unary_unary(CHECK)(request(service), timeout=5)


def test_a_ready_service_is_serving_and_an_unknown_name_is_not_found(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path / "models")
    port = free_port()
    target = f"127.0.0.1:{port}"
    with running_server(tmp_path / "models", tmp_path / "server.log", ctr_model="esmm", grpc_port=str(port)):
        assert checked(target) == SERVING  # the server as a whole
        assert checked(target, "inference.GRPCInferenceService") == SERVING
        with pytest.raises(grpc.RpcError) as refused:
            checked(target, "nope")
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no service 'nope' here" in refused.value.details()
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as watched:
            next(iter(channel.unary_stream("/grpc.health.v1.Health/Watch")(b"", timeout=5)))
        assert watched.value.code() == grpc.StatusCode.UNIMPLEMENTED  # the protocol's clients fall back to Check


def test_a_service_without_its_models_is_not_serving_until_they_load(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    repository.mkdir()
    port = free_port()
    target = f"127.0.0.1:{port}"
    settings = {"ctr_model": "esmm", "grpc_port": str(port), "poll_interval_s": "0.2"}
    with running_server(repository, tmp_path / "server.log", ready=False, **settings):

        def answer() -> bytes | None:
            try:
                return checked(target)
            except grpc.RpcError:  # not listening yet
                return None

        assert eventually(answer, 60, "the gRPC port never answered") == NOT_SERVING
        publish_tiny_esmm(repository)
        eventually(lambda: answer() == SERVING, 30, "not serving once its model was published")
