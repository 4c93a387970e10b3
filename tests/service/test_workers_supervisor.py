"""The supervisor of several workers (service/workers.py) before it forks: a port it cannot listen on."""

from __future__ import annotations

import logging
import socket

import pytest

from service.settings import Settings
from service.workers import supervise


def test_a_port_in_use_is_said_in_one_line_and_the_supervisor_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    started = []
    with socket.create_server(("127.0.0.1", 0)) as taken, caplog.at_level(logging.ERROR):
        port = taken.getsockname()[1]
        code = supervise(Settings(workers=2, port=port), lambda *args: started.append(args))
    assert code == 1 and not started  # no worker was forked
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_grpc_port_in_use_stops_the_supervisor_before_any_worker(
    caplog: pytest.LogCaptureFixture, reuse_port: bool
) -> None:
    """The workers bind the gRPC port with SO_REUSEPORT: a socket already there (even one that would share
    it: another service of the same user) must not take half the calls."""
    started = []
    with (
        socket.create_server(("127.0.0.1", 0)) as free,
        socket.create_server(("127.0.0.1", 0), reuse_port=reuse_port) as taken,
        caplog.at_level(logging.ERROR),
    ):
        port, grpc_port = free.getsockname()[1], taken.getsockname()[1]
        free.close()
        code = supervise(Settings(workers=2, port=port, grpc_port=grpc_port), lambda *args: started.append(args))
    assert code == 1 and not started
    assert f"cannot listen on 127.0.0.1:{grpc_port}" in caplog.text
