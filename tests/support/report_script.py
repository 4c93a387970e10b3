"""A script of ``reports/`` run as its page gives it (``PYTHONPATH=. python reports/NAME.py ...`` from the
checkout's root), in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.checkout import ROOT


def run_report_script(name: str, *arguments: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "reports" / name), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
