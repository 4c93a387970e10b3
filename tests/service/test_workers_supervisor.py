"""A port the service cannot listen on, said before any work: by the supervisor of several workers before
it forks (service/workers.py), and by one process before it loads a model."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import Settings
from service.workers import supervise
from tests.service.tiny_model import publish_tiny_esmm

ROOT = Path(__file__).resolve().parents[2]


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


def test_one_process_says_a_port_in_use_before_loading_a_model(tmp_path: Path) -> None:
    """It bound the port only after every model was loaded and warmed up, and it had said it was ready."""
    publish_tiny_esmm(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CTR_PORT": str(port), "CTR_MODEL_REPOSITORY": str(tmp_path)}
        env |= {"CTR_CTR_MODEL": "esmm", "CTR_USE_CUDA": "false"}
        done = subprocess.run([sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr  # uvicorn's start-up failure
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "version 1 loaded" not in done.stderr and "ready: roles" not in done.stderr
