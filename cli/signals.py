"""SIGTERM ends a command as Ctrl-C does: the blocks that started servers or processes stop them.

Python's default SIGTERM ends the process at once, its ``finally`` blocks and context managers unrun:
the servers ``ctr bench`` and ``ctr docs-check`` started were left running under init (holding their
ports), and their temporary folders stayed. Under ``exit_on_sigterm`` the signal raises ``SystemExit``
with a shell's code for it (128 + 15 = 143), so everything unwinds as for SIGINT's KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


def _exit(*_: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    sys.exit(SIGTERM_EXIT_CODE)


def exit_on_sigterm() -> Any:
    """From now on SIGTERM raises ``SystemExit(143)``; returns the handler it replaces."""
    return signal.signal(signal.SIGTERM, _exit)


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """``exit_on_sigterm`` for the block only: the previous handler back after it (a command run in a
    test's process leaves that process's handling as it found it)."""
    previous = exit_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
