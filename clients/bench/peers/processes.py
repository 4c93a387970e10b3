"""A peer server as a tree of processes: started on a free loopback port, its CPU time summed over
every process it started (Ray's GCS, raylet, proxy and replica workers; LitServe's inference workers;
BentoML's workers), stopped with everything under it.

CPU time is read from Linux's /proc (user + system time of each live process); elsewhere it is None.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from clients.bench.machine import cpu_seconds, descendants
from clients.service_process import Signals, free_port, poll_until_ready, spawn
from clients.service_process import stop as stop_process
from common.provenance import CHECKOUT

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # Ray starts a cluster (GCS, raylet, controller, proxy, replica) before it answers
# to the session the peer leads, in this order, each while it still runs: the framework's graceful stop first
STOP_SIGNALS: Signals = ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))


def label(pid: int) -> str:
    """A short name for a process: its title (Ray names its workers ``ray::ProxyActor`` and the like)
    or its command line's first words."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return label_of([w.decode(errors="replace") for w in raw if w])


def label_of(words: list[str]) -> str:
    """``label`` of a command line."""
    if not words:
        return "?"
    if words[0].startswith("ray::"):  # its title names the method running now: keep the actor's name
        return words[0].split()[0].split(".")[0][:60]
    if len(words) == 1:
        return words[0].split()[0][:60]
    name = Path(words[0]).name
    if not name.startswith("python") or len(words) == 1:
        return name[:60]
    args = [w for w in words[1:] if w not in ("-B", "-u", "-E", "-s")]
    if "-c" in args and args.index("-c") + 1 < len(args):  # multiprocessing's children: the module they start
        code = args[args.index("-c") + 1].split()
        rest = code[1] if len(code) > 1 and code[0] == "from" else "-c"
    elif args and args[0] == "-m" and len(args) > 1:
        rest = args[1]
    else:
        rest = Path(args[0]).name if args else ""
    if "--service-name" in args and args.index("--service-name") + 1 < len(args):  # BentoML's workers
        rest += f" {args[args.index('--service-name') + 1]}"
    return f"{name} {rest}"[:60]


@dataclass
class PeerProcess:
    """A started peer: its root process and every process seen under it since."""

    name: str
    port: int
    pid: int
    seen: set[int] = field(default_factory=set)

    def cpu_by_process(self) -> dict[int, tuple[str, float]]:
        """pid -> (label, CPU seconds so far) for the root and every live process under it."""
        found = {}
        for pid in descendants(self.pid):
            seconds = cpu_seconds(pid)
            if seconds is not None:
                found[pid] = (label(pid), seconds)
        self.seen.update(found)
        return found

    def pin(self, cpus: set[int]) -> None:
        """Confine the root and every process now under it, each of their threads (affinity is per
        thread), and so what they start later, to ``cpus``."""
        for pid in descendants(self.pid):
            with suppress(OSError):
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with suppress(ProcessLookupError, PermissionError):
                        os.sched_setaffinity(int(tid), cpus)

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the whole tree so far (processes that already exited are not counted)."""
        found = self.cpu_by_process()
        return sum(seconds for _, seconds in found.values()) if found else None


def post_json(port: int, path: str, body: bytes, timeout: float = 10.0) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"error": error.read().decode(errors="replace")[:500]}


def _wait_ready(peer: PeerProcess, process: subprocess.Popen, body: bytes, log: Path) -> None:
    """Until a real scoring request answers 200 (a peer's health route says little about its model)."""
    poll_until_ready(
        process,
        partial(_scores, peer.port, body),
        START_TIMEOUT_S,
        exited=lambda code: f"{peer.name} exited with {code}; its log ({log}):\n{_tail(log)}",
        late=lambda: f"{peer.name} did not answer after {START_TIMEOUT_S:.0f} s; its log ({log}):\n{_tail(log)}",
        interval_s=0.5,
    )


def _scores(port: int, body: bytes) -> bool:
    try:
        return post_json(port, "/v1/score", body, timeout=5.0)[0] == 200
    except OSError:
        return False


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.exists() else ""


@contextmanager
def running_peer(
    name: str, command: list[str], env: dict[str, str], ready_body: bytes, log: Path
) -> Iterator[PeerProcess]:
    """``command`` (``{port}`` replaced by a free port) in its own session, until the block ends; then
    SIGINT, SIGTERM and SIGKILL, in that order, to the session and to every process seen under it."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    process = spawn(command, {"PYTHONPATH": str(CHECKOUT), **env}, log, cwd=CHECKOUT, start_new_session=True)
    peer = PeerProcess(name, port, process.pid)
    try:
        _wait_ready(peer, process, ready_body, log)
        peer.cpu_by_process()
        logger.info("%s ready on port %d (%d processes)", name, port, len(peer.seen))
        yield peer
    finally:
        peer.cpu_by_process()
        stop(peer, process)


def stop(peer: PeerProcess, process: subprocess.Popen) -> None:
    with suppress(subprocess.TimeoutExpired):  # a root that outlives even SIGKILL's wait is left to the OS
        stop_process(process, signals=STOP_SIGNALS, group=True)
    for pid in peer.seen - {process.pid}:  # workers that outlived their parent
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
