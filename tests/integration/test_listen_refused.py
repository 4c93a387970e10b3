"""A port taken between the service's bind (before the models load: service/binding.py) and uvicorn's listen
(once they are) is said in one line naming the address, and the start exits 3 (``STARTUP_FAILURE``), as a port
taken at the bind is: it ended in a 196-line traceback after "Application startup complete.", exit 1. So is a
gRPC port taken since the start's check (grpcio raises where it cannot bind: 65 lines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clients.service_process import free_port
from tests.support.checkout import ROOT
from tests.support.tiny_model import publish_tiny_esmm

# the service's own run, on a socket bound as binding.py binds it, with the HTTP port (or the gRPC port, where
# one is given) taken by another socket (bound with SO_REUSEADDR, as two services started at once do, and
# listening) before the service listens on it
TAKEN_BEFORE_THE_LISTEN = """
import logging, socket, sys
from pathlib import Path
from service.binding import bound_sockets
from service.server import configure_logging, run
from service.settings import Settings

repository, port, grpc_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
settings = Settings(model_repository=repository, ctr_model="esmm", port=port, grpc_port=grpc_port)
configure_logging(logging.INFO)
sockets = bound_sockets(settings.host, settings.port)
taker = socket.socket()
taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
taker.bind((settings.host, grpc_port or port))
taker.listen()
run(settings, sockets)
"""


def started_with_a_port_taken(repository: Path, port: int, grpc_port: int = 0) -> subprocess.CompletedProcess:
    """The service's run on ``port`` (and ``grpc_port``: 0, none), the last of them taken before it listens."""
    return subprocess.run(
        [sys.executable, "-c", TAKEN_BEFORE_THE_LISTEN, str(repository), str(port), str(grpc_port)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "CTR_USE_CUDA": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_port_taken_before_the_listen_is_said_in_one_line_and_exits_3(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    publish_tiny_esmm(repository)
    port = free_port()
    started = started_with_a_port_taken(repository, port)
    assert started.returncode == 3, started.stderr
    assert f"cannot listen on 127.0.0.1:{port} (CTR_PORT): Address already in use" in started.stderr
    assert "Traceback" not in started.stderr, started.stderr
    assert "Application shutdown complete." in started.stderr  # the lifespan shut down, the batchers drained


def test_a_grpc_port_taken_since_the_check_is_said_in_one_line_and_exits_3(tmp_path: Path) -> None:
    pytest.importorskip("grpc")
    repository = tmp_path / "models"
    publish_tiny_esmm(repository)
    port = free_port()
    grpc_port = free_port(port)
    started = started_with_a_port_taken(repository, port, grpc_port)
    assert started.returncode == 3, started.stderr
    assert f"cannot listen on 127.0.0.1:{grpc_port} (CTR_GRPC_PORT): Failed to bind" in started.stderr
    assert "Traceback" not in started.stderr, started.stderr
