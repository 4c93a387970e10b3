"""A server as an external process: started on a free loopback port, waited on until it is ready,
stopped by a signal, then killed after a bounded wait, whatever happened in between.

One home for that life cycle (``free_port``, ``spawn``, ``poll_until_ready``, ``stop``, ``started``),
whoever starts the server: the real service (``served``: ``ctr serve``, configured only through its
``CTR_*`` environment variables; ``running_service``: one per auction pipeline, with its own model
repository, the role models and an admin token for hot reload), ``ctr bench serve``'s servers
(clients/bench/serve.py: ``server``), the peer frameworks (clients/bench/peers/processes.py), the
training processes of ``ctr prepare`` and ``ctr docs-check``'s service.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.roles import ROLE

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 10_000
START_TIMEOUT_S = 90.0  # the service loads and warms up every role model before it says ready

# How ``stop`` ends a process: each (signal, seconds to wait for the exit after it; None: no limit),
# the next sent only while the process outlives the last wait.
Signals = Sequence[tuple[signal.Signals, float | None]]
GRACEFUL: Signals = ((signal.SIGINT, 15.0), (signal.SIGKILL, 5.0))  # uvicorn's graceful stop, then a kill


@dataclass(frozen=True)
class RunningService:
    url: str
    token: str  # the admin bearer token it was started with
    log: Path


def free_port(*avoid: int) -> int:
    """A free loopback port for a server this process starts, none of ``avoid`` (ports chosen already for
    another of its servers): one the kernel picks, or where ``TEST_PORTS`` names a range ("20000-20999": a
    shared machine's allotment; each pytest-xdist process's own block, tests/conftest.py), the next free
    one of it after the last taken (the first from a random point), so that two calls in a row differ before
    either port is bound."""
    allotted = os.environ.get(PORTS_VARIABLE)
    if not allotted:
        while (port := _kernel_port()) in avoid:
            pass
        return port
    first, last = port_range(allotted)
    count = last - first + 1
    # the first search starts anywhere in the range: two processes given the same one (two test runs on a
    # machine) took the same ports in the same order, and one run's ready check was answered by the other's
    start = _next_port.get(allotted) or first + secrets.randbelow(count)
    for offset in range(count):
        port = first + (start - first + offset) % count
        if port not in avoid and _bindable(port):
            _next_port[allotted] = port + 1 if port < last else first
            return port
    raise RuntimeError(f"no free loopback port in {PORTS_VARIABLE}={allotted}")


PORTS_VARIABLE = "TEST_PORTS"


def port_range(allotted: str) -> tuple[int, int]:
    """The first and last port of a ``TEST_PORTS`` value ("20000-20999", or one port); ValueError where it
    names no range of ports."""
    low, _, high = allotted.partition("-")
    first, last = int(low), int(high or low)
    if not 0 < first <= last <= 65535:
        raise ValueError(f"{PORTS_VARIABLE}={allotted} is no range of ports (1-65535)")
    return first, last


_next_port: dict[str, int] = {}  # a TEST_PORTS range -> the port its next search starts from


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spawn(
    command: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None, **popen: Any
) -> subprocess.Popen:
    """``command`` started with ``env`` over this process's environment, in ``cwd`` (None: this
    process's); its output, stdout and stderr, to ``log`` (its folder made where missing: a file, never a
    pipe, which stalls the process once it fills unread). ``popen``: further arguments of
    ``subprocess.Popen`` (``start_new_session``, say)."""
    full_env = {**os.environ, **env}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as output:
        return subprocess.Popen(command, cwd=cwd, env=full_env, stdout=output, stderr=subprocess.STDOUT, **popen)


def answers_200(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of ``url`` answers 200 within ``timeout`` seconds (not: refused, an error status,
    no answer in time)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def poll_until_ready(
    process: subprocess.Popen,
    ready: Callable[[], bool],
    timeout_s: float,
    exited: Callable[[int], str],
    late: Callable[[], str],
    interval_s: float = 0.2,
) -> None:
    """Return once ``ready()`` says True, asked every ``interval_s``; RuntimeError(``exited(its return
    code)``) if ``process`` exits first, RuntimeError(``late()``) once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(exited(process.returncode))
        if ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(late())
        time.sleep(interval_s)


def wait_ready(process: subprocess.Popen, url: str, log: Path, timeout_s: float = START_TIMEOUT_S) -> None:
    """Return once the service at ``url`` says ready (``/v2/health/ready`` answers 200); RuntimeError with its
    ``log`` if the process exits or is not ready within ``timeout_s``."""
    poll_until_ready(
        process,
        lambda: answers_200(f"{url}/v2/health/ready"),
        timeout_s,
        exited=lambda code: f"the service exited with {code}; its log ({log}):\n{log.read_text(encoding='utf-8')}",
        late=lambda: (
            f"the service was not ready after {timeout_s:.0f} s; its log ({log}):\n{log.read_text(encoding='utf-8')}"
        ),
    )


# the service's text log formats (service/server.py: one process's, and a worker's with its pid)
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+\+00:00 (?:ERROR|CRITICAL) (?:\[pid \d+\] )?[\w.]+: ")
EXCEPTION_LINE = re.compile(r"^[\w.]+(?:Error|Exception|Interrupt|Exit)\b.*")  # a traceback's last line


def failure_reason(log: Path) -> str:
    """Why a service did not get ready, in one line of its ``log``: its first ERROR or CRITICAL message (the
    cause: with several workers the supervisor's "worker 0 ... exited" lines follow a worker's reason), else
    a traceback's last line, else the log's last line (what a caller can say after the log, in a temporary
    folder, is gone)."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [message for line in lines if (message := _error_message(line)) is not None]
    exceptions = [line for line in lines if EXCEPTION_LINE.match(line)]
    return errors[0] if errors else (exceptions or lines or ["its log is empty"])[-1]


def _error_message(line: str) -> str | None:
    """The message of an ERROR or CRITICAL line of the service's log, in its text formats or as JSON
    (``CTR_LOG_FORMAT=json``); None for any other line."""
    if LOG_PREFIX.match(line):
        return LOG_PREFIX.sub("", line)
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
            return str(record.get("message", ""))
    return None


def stop(*processes: subprocess.Popen, signals: Signals = GRACEFUL, group: bool = False) -> None:
    """End ``processes``: the first of ``signals`` to each still running, then for each in turn a wait
    of that signal's seconds, and while it still runs the next signal and its wait; the last wait's
    ``subprocess.TimeoutExpired`` is raised. ``group``: each signal goes to the process group the process
    leads (one started with ``start_new_session``), so to what it started too."""

    def send(process: subprocess.Popen, sig: signal.Signals) -> None:
        if not group:
            process.send_signal(sig)  # nothing once it has exited
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    for process in processes:
        if process.poll() is None:
            send(process, signals[0][0])
    for process in processes:
        for step, (sig, wait_s) in enumerate(signals):
            if step:
                if process.poll() is not None:
                    break
                send(process, sig)
            try:
                process.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                if step == len(signals) - 1:
                    raise


@contextmanager
def started(
    command: list[str],
    env: Mapping[str, str],
    ready: Callable[[subprocess.Popen], None],
    log: Path,
    cwd: Path | None = None,
    signals: Signals = GRACEFUL,
) -> Iterator[subprocess.Popen]:
    """``command`` started (``spawn``) until the block ends; yields its process once ``ready(process)``
    has returned (it raises where the process is not ready); stopped with ``signals`` (``stop``) however
    the block ends."""
    process = spawn(command, env, log, cwd)
    try:
        ready(process)
        yield process
    finally:
        stop(process, signals=signals)


@contextmanager
def served(repository: Path, log: Path, env: Mapping[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``ctr serve`` over ``repository`` on a free loopback port, with no access log and warnings only,
    configured further by ``env`` (``CTR_*`` variables), its output to ``log``; yields its URL and process
    once ready (``wait_ready``); SIGINT, then a kill (``GRACEFUL``), when the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {
        "CTR_HOST": "127.0.0.1",
        "CTR_PORT": str(port),
        "CTR_MODEL_REPOSITORY": str(repository),
        "CTR_ACCESS_LOG": "false",
        "CTR_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [sys.executable, "-m", "cli.main", "serve"]
    with started(command, settings, lambda process: wait_ready(process, url, log), log) as process:
        yield url, process


@contextmanager
def running_service(repository: Path, roles: dict[str, str], log: Path, workers: int = 1) -> Iterator[RunningService]:
    """``ctr serve`` over ``repository`` with ``roles`` (role -> model name) in ``workers`` processes;
    yields once ready."""
    token = secrets.token_hex(16)
    env = {
        **{f"CTR_{ROLE[role].settings_key.upper()}": model for role, model in roles.items()},
        "CTR_ADMIN_TOKEN": token,
        "CTR_WORKERS": str(workers),
        # an offline batch client: a deadline for online callers (1 s by default) only turns a busy
        # shared machine into 504s; a slow answer is still measured in p50 / p99
        "CTR_REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),
    }
    with served(repository, log, env) as (url, process):
        logger.info("service on %s serves %s from %s (pid %d)", url, roles, repository, process.pid)
        yield RunningService(url=url, token=token, log=log)
