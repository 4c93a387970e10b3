"""Fixtures for every test."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from clients.service_process import PORTS_VARIABLE, port_range
from tests.support.ctr_in_process import ctr_in_process

# Hypothesis's 200 ms deadline per example and its too-slow health check are timed assertions: on a loaded CI
# machine one slow example failed a property that holds (tests/common/test_encoder.py, load 6-8, passed again
# with the same seed). Speed is measured by the benchmarks, never by a test.
settings.register_profile("untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("untimed")

# each pytest-xdist process's own block of loopback ports for the servers it starts, below Linux's ephemeral
# range (32768 on), where the kernel picks the ports of outgoing connections and of bind(0)
WORKER_PORTS_FROM, WORKER_PORTS, EPHEMERAL_FROM = 20000, 1000, 32768


def stop_signals_heard() -> None:
    """SIGINT and SIGHUP back to their defaults in this process, and so in the processes its tests start: under
    ``nohup`` (SIGHUP) or a script's ``make test &`` (SIGINT), they were inherited ignored, and the tests that
    send them to a ``ctr`` or a service as Ctrl-C or a terminal's hang-up would fail (a clean-clone run
    started under ``nohup ... &``: the interrupted auction ran to its end, two services did not stop on the hang-up)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, the ports of this process's servers are its own block (``TEST_PORTS``, read by
    ``free_port``): a port the kernel chose for one process's server could be chosen for another's before
    the first was bound, and a test then ran against the other process's server, its ready check answered
    by it (a scratch run reproduced it). A ``TEST_PORTS`` given (a shared machine's allotment) is split
    between the processes."""
    stop_signals_heard()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    one_torch_thread_per_process()
    index, count = int(worker.removeprefix("gw")), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    allotted = os.environ.get(PORTS_VARIABLE)
    if allotted:
        first, last = port_range(allotted)
        size = (last - first + 1) // count
        if size < 1:
            raise pytest.UsageError(f"{PORTS_VARIABLE}={allotted} has fewer ports than the {count} test processes")
    else:  # 1,000 ports each for up to 12 processes, fewer past that: all below the ephemeral range
        first, size = WORKER_PORTS_FROM, min(WORKER_PORTS, (EPHEMERAL_FROM - WORKER_PORTS_FROM) // count)
    os.environ[PORTS_VARIABLE] = f"{first + index * size}-{first + (index + 1) * size - 1}"


# `make test`'s second pass runs the tests marked serial alone: the first pass, which deselects them
# (``-m "not serial"``), writes the files that hold them to the file this variable names, so that the second
# imports those files alone instead of collecting the whole suite again to find their marks
SERIAL_FILES_VARIABLE = "TEST_SERIAL_FILES"


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Where ``TEST_SERIAL_FILES`` names a file, the files of the deselected tests marked ``serial``, one a line
    (under pytest-xdist, the first process writes them: each collects the whole suite)."""
    target = os.environ.get(SERIAL_FILES_VARIABLE)
    if not target or os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        return
    files = {item.nodeid.split("::", 1)[0] for item in items if item.get_closest_marker("serial")}
    written = set(Path(target).read_text(encoding="utf-8").split()) if Path(target).exists() else set()
    Path(target).write_text("".join(f"{name}\n" for name in sorted(written | files)), encoding="utf-8")


def one_torch_thread_per_process() -> None:
    """Under pytest-xdist, torch (and what this process starts: its trainings) runs on one thread
    (``OMP_NUM_THREADS=1``, read when torch is imported, after this hook), unless the shell chose a number.

    `make test` starts one test process a CPU; torch's default, a thread a core in each, put twice as many
    spinning OpenMP threads as cores on the machine, and the tiny networks the tests train waited on each
    other's. On the 2-core VM (load average 5-7, other jobs running), `OMP_NUM_THREADS=2 pytest -n 2
    tests/e2e/test_train_serve_score.py` took 209 s (the shared world repository 149 s to train, `ctr evaluate
    ctr` 36 s), and without the variable, so with this default, 72 s (21 s, 3 s)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def no_ambient_service_settings() -> Iterator[None]:
    """Every ``CTR_*`` variable of the shell running the tests removed for the session.

    ``Settings`` reads them (pydantic settings, prefix ``CTR_``) and servers a test spawns inherit this
    process's environment, so a developer's ``CTR_MAX_CANDIDATES=5`` or ``CTR_ADMIN_TOKEN`` changed what
    tests saw; a test sets what it needs itself. Session-scoped, so that it runs before session-scoped
    fixtures that build ``Settings`` (an autouse fixture runs first within its scope, not before wider ones)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in [name for name in os.environ if name.startswith("CTR_")]:
            monkeypatch.delenv(name)
        yield


@pytest.fixture
def closed_after() -> Iterator:
    """Keeps each matplotlib figure a test draws (``closed_after(figure)`` returns it) and closes them when the
    test ends: pyplot holds every open figure until it is closed."""
    figures = []

    def keep(figure):
        figures.append(figure)
        return figure

    yield keep
    if figures:
        import matplotlib.pyplot as plt

        for figure in figures:
            plt.close(figure)


@pytest.fixture
def ctr_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., subprocess.CompletedProcess]:
    """``ctr_here(*args, cwd=PATH, **variables)``: ``ctr ARGS`` run by this process as the console script runs
    it (tests/support/ctr_in_process.py), in ``cwd`` with the environment variables ``variables`` set: the same
    exit status, stdout and stderr (a refusal's ``error:`` line, cli/errors.py) in milliseconds, where a process
    of its own spends seconds starting Python and importing what the command needs. For the many cases of a
    command; a test module keeps a case of each kind in a process of its own, as a user runs it. Log records go
    to pytest's capture, not the stderr returned."""

    def run(*args: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return ctr_in_process(monkeypatch, capsys, *args, cwd=cwd)

    return run
