"""The event loop's accept failures said once an interval (service/http/accept_failures.py): with its file
descriptors used up the loop logged one line and a traceback per try, a million lines in 10 s."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from service.http.accept_failures import ACCEPT_FAILURE, AcceptFailures
from tests.support.checkout import ROOT


def failure_record() -> logging.LogRecord:
    error = OSError(24, "Too many open files")
    return logging.LogRecord(
        "asyncio", logging.ERROR, "", 0, f"{ACCEPT_FAILURE}\nsocket: <...>", (), (OSError, error, None)
    )


def test_one_line_an_interval_without_the_traceback_counting_what_it_held_back() -> None:
    now = [100.0]
    accept_failures = AcceptFailures(interval_s=10.0, clock=lambda: now[0])
    first = failure_record()
    assert accept_failures.filter(first) and first.exc_info is None
    assert (
        first.getMessage() == f"{ACCEPT_FAILURE} ([Errno 24] Too many open files): new connections wait in the backlog"
    )
    assert not any(accept_failures.filter(failure_record()) for _ in range(2047))
    now[0] += 10.0
    later = failure_record()
    assert accept_failures.filter(later) and later.getMessage().endswith("; 2047 more since the last line")
    other = logging.LogRecord("asyncio", logging.ERROR, "", 0, "Task exception was never retrieved", (), None)
    assert accept_failures.filter(other) and other.msg == "Task exception was never retrieved"


def test_the_service_s_logging_holds_asyncio_s_accept_failures_back() -> None:
    """In a process of its own (the service's logging set up twice, as a test run may): a hundred failures
    reported as asyncio's accept loop reports them are one line on stderr, without a traceback."""
    script = f"""
import asyncio, logging
from service.server import configure_logging
configure_logging(logging.INFO)
configure_logging(logging.INFO)
loop = asyncio.new_event_loop()
for _ in range(100):
    loop.call_exception_handler({{"message": {ACCEPT_FAILURE!r}, "exception": OSError(24, "Too many open files")}})
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 1 and ACCEPT_FAILURE in lines[0], done.stderr
