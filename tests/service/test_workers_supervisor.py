"""A port the service cannot listen on, said before any work: by the supervisor of several workers before
it forks (service/workers.py), and by one process before it loads a model."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import Settings
from service.workers import supervise
from tests.support.checkout import ROOT
from tests.support.tiny_model import publish_tiny_esmm


def test_a_port_in_use_is_said_in_one_line_and_the_supervisor_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    started = []
    with socket.create_server(("127.0.0.1", 0)) as taken, caplog.at_level(logging.ERROR):
        port = taken.getsockname()[1]
        code = supervise(Settings(workers=2, port=port), lambda *args: started.append(args))
    assert code == 1 and not started  # no worker was forked
    assert f"cannot listen on 127.0.0.1:{port} (CTR_PORT)" in caplog.text


def supervised_under(directory: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> int:
    """``supervise``'s exit status for two workers with ``directory`` as the temporary directory (as TMPDIR
    names it), none of them forked."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    started = []
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    with caplog.at_level(logging.ERROR):
        code = supervise(Settings(workers=2, port=port), lambda *args: started.append(args))
    assert not started
    return code


def test_no_writable_temporary_directory_is_said_naming_tmpdir(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a read-only root filesystem, several workers stopped with "No usable temporary directory found in
    [...]", naming neither the setting that needs one nor the variable that gives it."""
    assert supervised_under(tmp_path / "missing", monkeypatch, caplog) == 1  # as TMPDIR naming no directory
    assert "CTR_WORKERS=2 needs a writable temporary directory (TMPDIR, else /tmp)" in caplog.text


def test_a_temporary_directory_too_long_for_the_workers_sockets_is_said_naming_tmpdir(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each worker listens on a Unix socket in the folder the workers share: under a TMPDIR of 80 characters
    every worker failed to start with a traceback ending "OSError: AF_UNIX path too long", and the supervisor
    stopped with "worker 0 exited with 3"."""
    long = tmp_path / ("t" * max(1, 80 - len(str(tmp_path))))
    long.mkdir()
    assert supervised_under(long, monkeypatch, caplog) == 1
    assert "CTR_WORKERS=2 needs a temporary directory with a shorter path (TMPDIR, else /tmp)" in caplog.text
    assert f"in {long} would have paths of " in caplog.text
    assert not list(long.iterdir())  # the folder it made is gone


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_grpc_port_in_use_stops_the_supervisor_before_any_worker(
    caplog: pytest.LogCaptureFixture, reuse_port: bool
) -> None:
    """The workers bind the gRPC port with SO_REUSEPORT: a socket already there (even one that would share
    it: another service of the same user) must not take half the calls."""
    started = []
    with (
        socket.create_server(("127.0.0.1", 0)) as free,
        socket.create_server(("127.0.0.1", 0), reuse_port=reuse_port) as taken,
        caplog.at_level(logging.ERROR),
    ):
        port, grpc_port = free.getsockname()[1], taken.getsockname()[1]
        free.close()
        code = supervise(Settings(workers=2, port=port, grpc_port=grpc_port), lambda *args: started.append(args))
    assert code == 1 and not started
    assert f"cannot listen on 127.0.0.1:{grpc_port} (CTR_GRPC_PORT)" in caplog.text


def test_one_process_says_a_port_in_use_before_loading_a_model(tmp_path: Path) -> None:
    """It bound the port only after every model was loaded and warmed up, and it had said it was ready."""
    publish_tiny_esmm(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CTR_PORT": str(port), "CTR_MODEL_REPOSITORY": str(tmp_path)}
        env |= {"CTR_CTR_MODEL": "esmm", "CTR_USE_CUDA": "false"}
        done = subprocess.run([sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr  # uvicorn's start-up failure
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "version 1 loaded" not in done.stderr and "ready: roles" not in done.stderr


def test_python_m_service_takes_no_arguments_and_says_so() -> None:
    """``python -m service --help`` (and ``--port 9000``) served the defaults on port 8000, the argument unread."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CTR_PORT": "abc"}  # it would refuse to start rather than serve
    helped = subprocess.run([sys.executable, "-m", "service", "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m service (no arguments)")
    assert "CTR_PORT=9000 python -m service" in helped.stdout and not helped.stderr
    assert helped.stdout.rstrip().endswith('docs/serving.md, "Settings"')  # it sent to `ctr serve --help`, 3 options
    refused = subprocess.run(
        [sys.executable, "-m", "service", "--port", "9000"], env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2 and not refused.stdout
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: python -m service takes no arguments, not '--port 9000': usage: ")


def test_python_m_service_says_a_wrong_setting_in_one_line() -> None:
    """``python -m service`` (the docs' other entry point) printed pydantic's 17-line traceback naming the
    field, where ``ctr serve`` says one line naming the variable; the checks of two settings named fields."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CTR_PORT": "abc", "CTR_MAX_BODY_BYTES": str(32 * 1024 * 1024)}
    done = subprocess.run([sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: invalid settings: CTR_PORT: Input should be a valid integer, unable to parse string as an integer"
    ]
    env["CTR_PORT"] = "8000"
    done = subprocess.run([sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: invalid settings: CTR_BODY_BYTES_IN_FLIGHT (16777216) must hold one body of CTR_MAX_BODY_BYTES "
        "(33554432)"
    )
