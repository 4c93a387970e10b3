"""Starting the real service under uvicorn on a free loopback port, for integration and e2e tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clients.service_process import free_port, started, wait_ready

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_server(
    repository: Path, log: Path, command: list[str] | None = None, ready: bool = True, **settings: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The service serving ``repository``; yields (base URL, process) once /v2/health/ready says 200
    (``ready=False``: as soon as the process is started, for a test of the start-up itself)."""
    port = free_port()
    env = {
        "PYTHONPATH": str(ROOT),
        "CTR_HOST": "127.0.0.1",
        "CTR_PORT": str(port),
        "CTR_MODEL_REPOSITORY": str(repository),
        "CTR_USE_CUDA": "false",
        **{f"CTR_{k.upper()}": v for k, v in settings.items()},
    }
    url = f"http://127.0.0.1:{port}"

    def wait(process: subprocess.Popen) -> None:
        if ready:
            try:
                wait_ready(process, url, log)
            except RuntimeError as error:
                pytest.fail(str(error))

    with started(command or [sys.executable, "-m", "service"], env, wait, log, cwd=ROOT) as process:
        yield url, process
