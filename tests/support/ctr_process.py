"""`ctr ARGS` run in a process of its own, as a user's shell runs it: this checkout on ``PYTHONPATH``, ``PATH``
``/usr/bin:/bin`` and nothing else of the test's environment (no ``CTR_*`` setting but those the test names),
optionally with a folder on a read-only mount (tests/support/read_only_mount.py), or as an install without some
modules runs it (``ctr_without``); and the one ``error:`` line a refusal ends with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.checkout import ROOT
from tests.support.read_only_mount import read_only_command

CTR = [sys.executable, "-c", "from cli.main import app; app()"]


def ctr(*args: str, cwd: Path, read_only: Path | None = None, **variables: str) -> subprocess.CompletedProcess:
    """``ctr ARGS`` in ``cwd`` with the environment ``variables``, the folder ``read_only`` (where given) on a
    read-only mount."""
    command = [*CTR, *args] if read_only is None else read_only_command(read_only, [*CTR, *args])
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **variables}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


# `ctr` as an install without some modules runs it: importing any of HIDDEN fails as if it were absent.
WITHOUT = """
import sys
HIDDEN = set(sys.argv.pop(1).split(","))

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from cli.main import app
app()
"""


def ctr_without(hidden: str, *args: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess:
    """``ctr ARGS`` in ``cwd`` where the modules ``hidden`` names (comma-separated top-level names, e.g. "torch")
    cannot be imported: a command that still does what it did never imported them."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **variables}
    command = [sys.executable, "-c", WITHOUT, hidden, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The command's one ``error:`` line, its last, after no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[-1].startswith("error: ") and not any(line.startswith("error: ") for line in lines[:-1]), lines
    return lines[-1]
