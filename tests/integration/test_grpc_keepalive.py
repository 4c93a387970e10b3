"""A client pinging every 5 s on an idle channel keeps its connection: grpc-core's server defaults (no pings
without calls, one per 5 min without data) answered an ad server's grpc-go/grpc-java channel (pinging every 10 s)
with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" on its third ping (~30 s idle), and its next bid paid a reconnect.

5 s is the shortest interval the service lets through, so the test idles past three of them (~16 s): a shorter
client interval would be cut off by the mended server too."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from clients.service_process import free_port
from tests.service.tiny_model import publish_tiny_esmm
from tests.support.server import running_server

PINGING = [
    ("grpc.keepalive_time_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),  # pings for ever, as grpc-go and grpc-java do (grpc-core: 2)
]


def test_an_idle_client_pinging_every_5_s_is_not_cut_off(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path / "models")
    port = free_port()
    states: list[grpc.ChannelConnectivity] = []
    with (
        running_server(tmp_path / "models", tmp_path / "log", ctr_model="esmm", grpc_port=str(port)),
        grpc.insecure_channel(f"127.0.0.1:{port}", options=PINGING) as channel,
    ):
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=5).live
        channel.subscribe(states.append)
        time.sleep(16.5)  # pings at ~5, 10 and 15 s: the third was the old server's GOAWAY
        assert stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=5).live
    assert set(states) == {grpc.ChannelConnectivity.READY}, states  # no GOAWAY: never IDLE or reconnecting
