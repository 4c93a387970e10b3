"""The shared life cycle of a server process (clients/service_process.py): readiness and stopping."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients.service_process import answers_200, free_port, poll_until_ready, spawn, stop

IGNORES_SIGINT = (
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def wait_for_line(log: Path, line: str) -> None:
    deadline = time.monotonic() + 10
    while line not in log.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_process_that_ignores_the_first_signal_gets_the_next(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "out.log"  # its folder is made
    process = spawn(python(IGNORES_SIGINT), {}, log)
    wait_for_line(log, "up")
    started = time.monotonic()
    stop(process, signals=((signal.SIGINT, 0.3), (signal.SIGTERM, 5.0)))
    assert process.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_every_process_gets_the_first_signal_before_any_wait(tmp_path: Path) -> None:
    logs = [tmp_path / f"{k}.log" for k in range(2)]
    processes = [spawn(python(IGNORES_SIGINT), {}, log) for log in logs]
    for log in logs:
        wait_for_line(log, "up")
    stop(*processes, signals=((signal.SIGTERM, 5.0), (signal.SIGKILL, None)))
    assert [p.returncode for p in processes] == [-signal.SIGTERM, -signal.SIGTERM]


def test_the_last_wait_that_runs_out_is_raised(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    process = spawn(python(IGNORES_SIGINT), {}, log)
    wait_for_line(log, "up")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            stop(process, signals=((signal.SIGINT, 0.2),))
    finally:
        stop(process, signals=((signal.SIGKILL, 5.0),))
    assert process.returncode == -signal.SIGKILL


def test_a_stopped_process_is_left_alone(tmp_path: Path) -> None:
    process = spawn(python("pass"), {}, tmp_path / "out.log")
    process.wait(timeout=10)
    stop(process)  # no signal to a reaped pid
    assert process.returncode == 0


def test_a_process_writing_more_than_a_pipe_holds_is_not_stalled_and_the_environment_is_extended(
    tmp_path: Path,
) -> None:
    """A bench server's stderr was a pipe read only once it exited: past the pipe's 64 KiB the server
    stalled in its write. Its output goes to a file, which the error of a failed start reads."""
    code = (
        "import os, sys; assert 'PATH' in os.environ; sys.stderr.write('x' * 1_000_000); sys.stderr.flush(); "
        "sys.stderr.write(os.environ['EXTRA']); sys.exit(3)"
    )
    log = tmp_path / "out.log"
    process = spawn(python(code), {"EXTRA": "no model"}, log)
    with pytest.raises(RuntimeError, match=r"exited with 3: x+no model$"):
        poll_until_ready(
            process,
            lambda: False,
            10,
            exited=lambda code: f"exited with {code}: {log.read_text()}",
            late=lambda: "late",
        )


def test_a_process_not_ready_in_time_is_reported_late(tmp_path: Path) -> None:
    process = spawn(python("import time; time.sleep(60)"), {}, tmp_path / "out.log")
    try:
        with pytest.raises(RuntimeError, match="late"):
            poll_until_ready(process, lambda: False, 0.3, exited=str, late=lambda: "late", interval_s=0.05)
    finally:
        stop(process)


def test_nobody_on_a_port_is_not_ready() -> None:
    assert not answers_200(f"http://127.0.0.1:{free_port()}/v2/health/ready", timeout=0.5)


def test_a_group_stop_reaches_what_the_process_started(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    code = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"
    )
    process = spawn(python(code), {}, log, start_new_session=True)
    deadline = time.monotonic() + 10
    while not log.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child = int(log.read_text().split()[0])
    stop(process, signals=((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)), group=True)
    assert process.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while running(child):
        assert time.monotonic() < deadline, "the child outlived its group's signal"
        time.sleep(0.01)


def running(pid: int) -> bool:
    """Alive and not a zombie (a reparented child waits for a reaper that may be slow)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


STAMP = "2026-12-05T12:00:00.001+00:00"  # common/utc_logging.py


def test_a_failed_start_s_reason_is_read_from_each_of_the_service_s_log_formats(tmp_path: Path) -> None:
    """Only one process's text lines were read: a worker's (with its pid) and JSON lines gave the last line."""
    from clients.service_process import failure_reason

    lines = {
        "text": f"{STAMP} ERROR service.app: the model repository does not exist",
        "worker": f"{STAMP} ERROR [pid 42] service.app: the model repository does not exist",
        "json": '{"time": "...", "level": "ERROR", "logger": "service.app", '
        '"message": "the model repository does not exist"}',
    }
    for name, line in lines.items():
        log = tmp_path / f"{name}.log"
        supervisor = f"{STAMP} ERROR [pid 40] service.workers: worker 0 (pid 43) exited with 3: stopping"
        log.write_text(f"{line}\n{STAMP} INFO uvicorn.error: Finished server process\n{supervisor}\n")
        assert failure_reason(log) == "the model repository does not exist", name  # the cause, not the exit
