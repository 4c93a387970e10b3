"""Several worker processes on one port (``CTR_WORKERS`` > 1): a supervisor and its workers.

One event loop runs a request's parsing, checks, batching and answer in Python, and at its limit it is
the process's one busy thread: on a 2-core machine it answered ~15,000 1-candidate requests a second
with the other core mostly idle (docs/serving.md, "Several worker processes"). So, as uvicorn's and
gunicorn's workers do, the process started (the supervisor) binds the port (binding.py: every address
of the host, not yet listening) and forks ``workers`` processes before anything is loaded; each runs the
whole service (its models, batchers, door and drain) on its own event loop, listens on the shared
sockets once its models are loaded and accepts connections from them, so a busy worker takes fewer of
them. Until the first worker is ready a client is refused at once (the supervisor listened before the
fork, and a client connecting during the load waited in the backlog: a health check with a 1 s
time-out timed out instead of being refused). The supervisor serves nothing itself:

- SIGTERM or SIGINT is passed on to every worker as SIGTERM, each drains as a single process does
  (server.py) once all of them have closed the listener (http/drain.py), and the supervisor exits 0
  once all have exited 0;
- a worker that exits by itself (it crashed, or could not start) ends the service: the others are sent
  SIGTERM and the supervisor exits 1, so whatever restarts the service sees it fail (no worker is
  restarted behind the operator's back);
- a worker whose supervisor is killed outright is sent SIGTERM by the kernel (Linux's parent-death
  signal);
- a stop signal that comes while the supervisor is still forking stops every worker too: its handlers
  stand before the first fork, and the workers start with the stop signals blocked, taking one sent
  while they load once their server's handlers stand (http/drain.py ``capture_signals``). It killed the
  supervisor at once, and the workers forked so far, ignoring it while they loaded, served the port on,
  orphaned;
- a terminal's hang-up is a stop unless the service was started ignoring it (``nohup``).

What a process of one would hold alone is shared: ``/metrics`` and the V2 statistics sum every worker's
counters (sibling_metrics.py); an admin load or unload is done by every worker before it is answered,
and only worker 0 polls the repository, what it finds loaded by every worker (sibling_admin.py); each
worker serves gRPC (``CTR_GRPC_PORT``) on the same port with ``SO_REUSEPORT`` (v2/grpc/server.py), once
the supervisor has found the port free.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from service.binding import bound_sockets, said_bound, shown
from service.settings import Settings
from service.sibling_admin import SOCKET_PATH_MAX, socket_paths_too_long
from service.sibling_metrics import SiblingMetrics

logger = logging.getLogger(__name__)

STOP_GRACE_S = 10.0  # beyond the drain time-out, before a worker that has not exited is killed
REAP_INTERVAL_S = 0.1  # how often the supervisor looks for an exited worker
_PR_SET_PDEATHSIG = 1

Run = Callable[[Settings, list[socket.socket], SiblingMetrics], None]  # server.run: one process's service


def supervise(settings: Settings, run: Run) -> int:
    """Fork ``settings.workers`` processes that ``run`` the service on the port's shared sockets; wait for
    them. The exit status: 0 when every worker exited 0 after a signal, 1 otherwise."""
    sockets = bound_sockets(settings.host, settings.port, settings.grpc_port)
    if sockets is None:
        return 1
    shared = _shared_directory(settings.workers)
    if shared is None:
        for sock in sockets:
            sock.close()
        return 1
    said_bound(sockets)  # as one process says it
    workers: dict[int, int] = {}  # pid -> index
    stop = _Stop(workers, settings.drain_timeout_s + STOP_GRACE_S)
    stop_signals = held_stop_signals()
    for signum in stop_signals:  # before the first fork: a stop then killed the supervisor, the workers orphaned
        signal.signal(signum, stop)
    # blocked on this thread, so each worker starts with them blocked (until its server's handlers stand); the
    # handlers above still run here for one another thread of this process takes
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        try:
            for index in range(settings.workers):
                workers[_fork(index, settings, sockets, shared, run)] = index
        except BaseException:  # a fork failed: the workers already started go too
            _signal_all(workers, signal.SIGKILL)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
        if stop.stopping:  # a stop came while forking: the workers forked since are told too
            stop()
        for sock in sockets:
            sock.close()  # the workers hold them
        logger.info("%d workers on %s: pids %s", len(workers), shown(settings.host, settings.port), list(workers))
        return _wait(workers, stop)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _shared_directory(workers: int) -> Path | None:
    """The folder the workers share (their metrics and admin sockets), made in the temporary directory; None,
    said in one line, where none can be made there or its sockets' paths would be too long to bind."""
    try:  # a read-only root filesystem needs a TMPDIR volume
        shared = Path(tempfile.mkdtemp(prefix="ctr-workers-"))
    except OSError as error:
        logger.error("CTR_WORKERS=%d needs a writable temporary directory (TMPDIR, else /tmp): %s", workers, error)
        return None
    too_long = socket_paths_too_long(shared, workers)
    if too_long is None:
        return shared
    shared.rmdir()
    logger.error(
        "CTR_WORKERS=%d needs a temporary directory with a shorter path (TMPDIR, else /tmp): the workers' sockets "
        "in %s would have paths of %d bytes, and a Unix socket's path can have at most %d",
        workers,
        shared.parent,
        too_long,
        SOCKET_PATH_MAX,
    )
    return None


def held_stop_signals() -> set[signal.Signals]:
    """The signals that stop the service: SIGTERM, SIGINT and a terminal's SIGHUP, unless this process was
    started ignoring SIGHUP (``nohup``), as it is then left ignored."""
    hang_up = set() if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else {signal.SIGHUP}
    return {signal.SIGTERM, signal.SIGINT, *hang_up}


def warn_if_more_than_cpus(workers: int, cpus: int) -> None:
    """A warning when the workers outnumber the CPUs: each holds its own sessions (about 120 MB) and threads,
    and they take turns on the cores rather than adding throughput (64 started on 2 cores without a word).
    The CPUs: the affinity mask's, fewer under a container's CPU limit (cpus.py)."""
    if workers > cpus:
        logger.warning(
            "CTR_WORKERS=%d is more than the %d CPUs this process may use: the workers take turns on them, each "
            "with its own copy of the models; at most one worker a CPU is the rule",
            workers,
            cpus,
        )


def _fork(index: int, settings: Settings, sockets: list[socket.socket], shared: Path, run: Run) -> int:
    supervisor = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the worker: never returns to the supervisor's code; the stop signals are blocked (supervise)
        # uvicorn handles SIGTERM and SIGINT while it serves, then raises the signal again under the handler
        # it found: one that does nothing here, so a worker that drained exits 0 instead of dying by the
        # signal. One that comes before uvicorn's handlers stand stays pending (blocked), and is theirs once
        # they do (SIG_IGN would discard it: a worker stopped while it forked served on, its stop lost).
        signal.signal(signal.SIGTERM, _taken_by_the_server)
        signal.signal(signal.SIGINT, _taken_by_the_server)
        # a terminal's hang-up reaches the whole process group: the supervisor turns it into SIGTERM for all
        # (a worker dying of it at once dropped its requests, undrained)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        _die_with_parent()
        if os.getppid() != supervisor:  # it died before the kernel was told to signal its death
            logger.error("worker %d: the supervisor exited before the worker started: not serving", index)
            return
        run(settings, sockets, SiblingMetrics(shared, index))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        logger.exception("worker %d failed", index)
    finally:
        logging.shutdown()
        os._exit(code)


def _taken_by_the_server(*_: object) -> None:
    """A worker's handler of SIGTERM and SIGINT outside uvicorn's: raised again by uvicorn once drained."""


def _die_with_parent() -> None:
    """Linux: SIGTERM to this process when its parent dies (elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Stop:
    """The supervisor's handler of the stop signals: SIGTERM to every worker, whichever signal came (a
    terminal's Ctrl-C reaches the workers too, and uvicorn takes a second SIGINT for "stop now, no
    drain"); from the first, the workers have ``within_s`` to exit."""

    def __init__(self, workers: dict[int, int], within_s: float) -> None:
        self.workers = workers
        self.within_s = within_s
        self.deadline = float("inf")
        self.received: str | None = None  # the name of the first stop signal, for ``_wait`` to log

    @property
    def stopping(self) -> bool:
        return self.deadline != float("inf")

    def __call__(self, signum: int | None = None, _frame: object = None) -> None:
        """As the handler of ``signum``, or called (a worker exited by itself, or a stop came while forking)."""
        if not self.stopping:
            self.deadline = time.monotonic() + self.within_s
            if signum is not None:  # logged by ``_wait``, not here: a line written in a handler could land
                self.received = signal.Signals(signum).name  # inside one the main thread was writing
        _signal_all(self.workers, signal.SIGTERM)


def _wait(workers: dict[int, int], stop: _Stop) -> int:
    """Reap the workers; the first to exit by itself, or a signal to this process, stops them all."""
    failed = killed = False
    while workers:
        if stop.received is not None:  # said once: a supervisor stopped by a signal logged nothing of it
            stopped_by, stop.received = stop.received, None
            logger.info(
                "%s received: stopping; SIGTERM to workers (pids %s), each draining; killed after %.0f s",
                stopped_by,
                sorted(workers),
                stop.within_s,
            )
        if time.monotonic() > stop.deadline and not killed:
            logger.error("workers (pids %s) did not stop in %.0f s: killed", sorted(workers), stop.within_s)
            _signal_all(workers, signal.SIGKILL)
            killed = True
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(REAP_INTERVAL_S)
            continue
        index = workers.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code == 0 and stop.stopping:
            logger.info("worker %d (pid %d) exited 0", index, pid)
        else:
            failed = True
            logger.error("worker %d (pid %d) exited with %d%s", index, pid, code, "" if stop.stopping else ": stopping")
            stop()
    return 1 if failed else 0


def _signal_all(workers: dict[int, int], signum: int) -> None:
    for pid in list(workers):
        with suppress(ProcessLookupError):
            os.kill(pid, signum)
