"""The image's HEALTHCHECK command (the Dockerfile's, and its copy in .ci/image_steps.sh) reaches the service
where ``CTR_HOST`` serves it: it probed 127.0.0.1 whatever the host, so ``CTR_HOST=::1`` was marked unhealthy."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading

import pytest

from tests.support.checkout import ROOT

COMMAND = re.compile(r'python -c "((?:[^"\\]|\\.)*)"')  # a python -c "..." command, its quotes escaped


def healthcheck_code() -> str:
    """The Python code the Dockerfile's HEALTHCHECK runs, as its shell reads it."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    healthcheck = dockerfile.split("\nHEALTHCHECK ", 1)[1]
    found = COMMAND.search(healthcheck)
    assert found is not None, "no python -c command in the HEALTHCHECK"
    return found.group(1)


def test_the_image_check_probes_with_the_healthcheck_command() -> None:
    steps = (ROOT / ".ci" / "image_steps.sh").read_text(encoding="utf-8")
    assert f'python -c "{healthcheck_code()}"' in steps


def ready_on(address: tuple[str, int], family: socket.AddressFamily) -> tuple[socket.socket, threading.Thread]:
    """A listener at ``address`` answering one request 200, as a ready service does."""
    listener = socket.socket(family)
    listener.bind(address)
    listener.listen()

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_healthcheck_probes_the_loopback_of_the_host_s_family(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    listener, thread = ready_on((host, 0), family)
    with listener:
        env = {**os.environ, "CTR_HOST": host, "CTR_PORT": str(listener.getsockname()[1])}
        code = healthcheck_code().replace('\\"', '"')
        probe = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=10)
        assert probe.returncode == 0, probe.stderr
        thread.join(timeout=5)
