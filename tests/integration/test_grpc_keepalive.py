"""Clients' keepalive pings on the gRPC port: ``CTR_GRPC_MIN_PING_INTERVAL_S`` decides which are let through. A
channel pinging at that interval on an idle connection keeps it; a client pinging faster is sent GOAWAY
ENHANCE_YOUR_CALM "too_many_pings". grpc-core's server defaults (no pings without calls, one per 5 min without data)
answered an ad server's grpc-go/grpc-java channel, pinging every 10 s, with that GOAWAY after ~30 s idle, and its
next bid paid a reconnect.

The server here lets pings through from every second on, so that three of them fit in a few seconds (at 5 s, the
default, the check idled 16.5 s). A second is also as often as a grpc-core client pings, whatever its
``grpc.keepalive_time_ms``: its ping rate policy holds each ping a second after the last (writing.cc,
``NextAllowedPingInterval``); grpc-go and grpc-java clients ping at most every 10 s. The faster pinger is
therefore a client of raw HTTP/2 frames."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from clients.service_process import free_port
from service.settings import Settings
from service.v2.grpc.server import PING_STRIKES, server_options
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm

MIN_PING_INTERVAL_S = 1.0
PINGING = [
    ("grpc.keepalive_time_ms", round(MIN_PING_INTERVAL_S * 1000)),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),  # pings for ever, as grpc-go and grpc-java do (grpc-core: 2)
]
# HTTP/2 (RFC 9113): the client's preface, and the frame types read or written here
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, GOAWAY = 0x4, 0x6, 0x7
ACK = 0x1
ENHANCE_YOUR_CALM = 0xB


@pytest.fixture(scope="module")
def grpc_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The service, letting clients' pings through from every ``MIN_PING_INTERVAL_S`` on."""
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository)
    port = free_port()
    settings = {"ctr_model": "esmm", "grpc_port": str(port), "grpc_min_ping_interval_s": str(MIN_PING_INTERVAL_S)}
    with running_server(repository, tmp_path_factory.mktemp("logs") / "server.log", **settings):
        yield port


def test_an_idle_client_pinging_at_the_interval_is_not_cut_off(grpc_port: int) -> None:
    """The answer to the first call is followed by a ping of the client's (flow control's BDP probe), which the
    server lets through unjudged; the keepalive pings come at ~1, 2 and 3 s, each a second or more after the last
    (the client counts the next interval from each one's ack, which the server sends once it has timed the ping).
    A server asking for more than a second between pings cuts this channel at the third: one set to
    CTR_GRPC_MIN_PING_INTERVAL_S=2 did, and one at the default."""
    states: list[grpc.ChannelConnectivity] = []
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=PINGING) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=5).live
        channel.subscribe(states.append)
        time.sleep(3 * MIN_PING_INTERVAL_S + 0.5)
        assert stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=5).live
    assert set(states) == {grpc.ChannelConnectivity.READY}, states  # no GOAWAY: never IDLE or reconnecting


def frame(kind: int, flags: int = 0, payload: bytes = b"") -> bytes:
    """An HTTP/2 frame on the connection's stream (0): 24-bit length, type, flags, stream id, payload."""
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + bytes(4) + payload


def whole_frames(data: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """The whole frames at the start of ``data``, each as (type, flags, payload), and the bytes after them."""
    frames = []
    while len(data) >= 9 and len(data) >= 9 + (length := int.from_bytes(data[:3], "big")):
        frames.append((data[3], data[4], data[9 : 9 + length]))
        data = data[9 + length :]
    return frames, data


def pinged_until_goaway(port: int, interval_s: float, limit_s: float = 10.0) -> tuple[int, int, bytes]:
    """Pings on a connection of raw HTTP/2 frames, one every ``interval_s``, until the server's GOAWAY: the
    pings sent, its error code and its debug data."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit_s) as connection:
        connection.sendall(PREFACE + frame(SETTINGS))
        pings, unread, start = 0, b"", time.monotonic()
        next_ping = start
        while time.monotonic() - start < limit_s:
            if time.monotonic() >= next_ping:
                connection.sendall(frame(PING, payload=pings.to_bytes(8, "big")))
                pings, next_ping = pings + 1, next_ping + interval_s
            connection.settimeout(max(0.001, next_ping - time.monotonic()))
            try:
                data = connection.recv(65536)
            except TimeoutError:
                continue
            assert data, f"the server closed the connection after {pings} pings without a GOAWAY"
            frames, unread = whole_frames(unread + data)
            for kind, flags, payload in frames:
                if kind == SETTINGS and not flags & ACK:
                    connection.sendall(frame(SETTINGS, ACK))
                elif kind == GOAWAY:  # last stream id, error code, debug data
                    return pings, int.from_bytes(payload[4:8], "big"), payload[8:]
    pytest.fail(f"no GOAWAY after {pings} pings in {limit_s:g} s")


def test_a_client_pinging_faster_than_the_interval_is_sent_goaway(grpc_port: int) -> None:
    """Pings every half interval: the first is let through, each after it is a strike, and the strike past
    ``PING_STRIKES`` is answered GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (grpc-core's GOAWAY for it)."""
    pings, code, debug = pinged_until_goaway(grpc_port, MIN_PING_INTERVAL_S / 2)
    assert (code, debug) == (ENHANCE_YOUR_CALM, b"too_many_pings")
    assert pings >= 1 + PING_STRIKES + 1  # the first, the strikes let pass, and the one past them


def test_the_default_lets_a_client_pinging_every_5_s_through() -> None:
    """The server's options, where a live check would idle 16 s: the tests above show that the interval the option
    names is what the server lets through and what it refuses, so under the default a client pinging every 5 s or
    less often (a grpc-go or grpc-java channel at its shortest, 10 s) keeps its idle connection."""
    options = dict(server_options(Settings()))
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 5_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
