"""`ctr ARGS` run by the test's own process as the console script runs it: its own ``sys.argv``, then
``app()``, whose ``__call__`` turns a user's mistake into one line and exit status 2 (cli/errors.py; typer's
``CliRunner`` calls the click command beneath it and sees the exception instead). The same exit status and
output in milliseconds, where a process of its own spends seconds importing torch.

A test of what only a real process shows (a signal, the status the interpreter exits with, a server) runs
``ctr`` in one of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def ctr_in_process(
    monkeypatch: pytest.MonkeyPatch, capture: pytest.CaptureFixture[str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``ctr ARGS`` (in ``cwd``, where given), its output read from ``capture``: ``capsys``, or ``capfd``
    to read the output of any process it starts too."""
    from cli.main import app

    if cwd is not None:
        monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["ctr", *args])
    capture.readouterr()
    try:
        app()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capture.readouterr()
    return subprocess.CompletedProcess(["ctr", *args], code, out, err)
