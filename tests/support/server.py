"""Starting the real service under uvicorn on a free loopback port, for integration and e2e tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from clients.service_process import free_port, started, wait_ready
from tests.support.checkout import ROOT

START_ATTEMPTS = 3  # a port found free can be taken before the server binds it (free_port closes its socket)


class PortTaken(Exception):
    """The server exited because its address was in use: worth another start on another port."""


@contextmanager
def running_server(
    repository: Path, log: Path, command: list[str] | None = None, ready: bool = True, **settings: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The service serving ``repository``; yields (base URL, process) once /v2/health/ready says 200
    (``ready=False``: as soon as the process is started, for a test of the start-up itself).

    Its HTTP port differs from a ``grpc_port`` among ``settings``; a start that fails because the port was
    taken between ``free_port`` and the server's bind is tried again on another port (``START_ATTEMPTS``)."""
    with ExitStack() as stack:
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port(*[int(settings["grpc_port"])] if "grpc_port" in settings else [])
            env = {
                "PYTHONPATH": str(ROOT),
                "CTR_HOST": "127.0.0.1",
                "CTR_PORT": str(port),
                "CTR_MODEL_REPOSITORY": str(repository),
                "CTR_USE_CUDA": "false",
                **{f"CTR_{k.upper()}": v for k, v in settings.items()},
            }
            url = f"http://127.0.0.1:{port}"

            def wait(process: subprocess.Popen, url: str = url, last: bool = attempt == START_ATTEMPTS) -> None:
                if ready:
                    try:
                        wait_ready(process, url, log)
                    except RuntimeError as error:
                        if not last and "address already in use" in str(error).lower():
                            raise PortTaken(str(error)) from None
                        pytest.fail(str(error))

            try:
                process = stack.enter_context(
                    started(command or [sys.executable, "-m", "service"], env, wait, log, cwd=ROOT)
                )
            except PortTaken:
                continue
            yield url, process
            return


def port_of(url: str) -> int:
    """The port of a loopback base URL (``http://127.0.0.1:PORT``), as ``running_server`` yields."""
    return int(url.rsplit(":", 1)[1])
