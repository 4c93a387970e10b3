"""The real service as an external process: ``ctr serve`` on a free loopback port, one per pipeline.

Configured only through its ``CTR_*`` environment variables (its own model repository, the role
models, an admin token for hot reload); stopped with SIGINT (uvicorn's graceful stop), then killed
after a bounded wait, whatever happened in between.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 10_000
START_TIMEOUT_S = 90.0  # the service loads and warms up every role model before it says ready


@dataclass(frozen=True)
class RunningService:
    url: str
    token: str  # the admin bearer token it was started with
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def running_service(repository: Path, roles: dict[str, str], log: Path, workers: int = 1) -> Iterator[RunningService]:
    """``ctr serve`` over ``repository`` with ``roles`` (role -> model name) in ``workers`` processes;
    yields once ready."""
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "CTR_HOST": "127.0.0.1",
        "CTR_PORT": str(port),
        "CTR_MODEL_REPOSITORY": str(repository),
        "CTR_CTR_MODEL": roles["ctr"],
        "CTR_CTCVR_MODEL": roles["ctcvr"],
        "CTR_ADMIN_TOKEN": token,
        "CTR_WORKERS": str(workers),
        "CTR_ACCESS_LOG": "false",
        "CTR_LOG_LEVEL": "WARNING",
        # an offline batch client: a deadline for online callers (1 s by default) only turns a busy
        # shared machine into 504s; a slow answer is still measured in p50 / p99
        "CTR_REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, log)
        logger.info("service on %s serves %s from %s (pid %d)", url, roles, repository, process.pid)
        yield RunningService(url=url, token=token, log=log)
    finally:
        stop(process)


def wait_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    """Return once ``url``'s /v2/health/ready says 200; RuntimeError with the log if the process exits
    or is not ready within START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}; its log ({log}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            waited = f"{START_TIMEOUT_S:.0f} s"
            raise RuntimeError(f"the service was not ready after {waited}; its log ({log}):\n{log.read_text()}")
        time.sleep(0.2)
