"""SIGTERM ends a command as Ctrl-C does: the blocks that started servers or processes stop them.

Python's default SIGTERM ends the process at once, its ``finally`` blocks and context managers unrun:
the servers ``ctr bench``, ``ctr docs-check`` and ``ctr auction`` started were left running under init
(holding their ports), and their temporary folders and files stayed (an export's staging folder, the file
``ctr score`` was writing). Under ``sigterm_exits`` the signal raises ``SystemExit`` with a shell's code
for it (128 + 15 = 143), so everything unwinds as for SIGINT's KeyboardInterrupt. The app's callback
(cli/main.py) runs every command under it, so that none is left out (each command once asked for it itself,
and the ones that did not were the ones that left things behind), but ``ctr serve`` (which drains on SIGTERM
itself) and the processes torchrun starts for ``ctr train --distributed`` (which keep the default: one blocked
in a collective could not run the handler).
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


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """SIGTERM raises ``SystemExit(143)`` in the block; the previous handler back after it (a command run in
    a test's process leaves that process's handling as it found it)."""
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


STOPPING = (signal.SIGTERM, signal.SIGINT)  # the signals that unwind a command (SystemExit, KeyboardInterrupt)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT held back for the block, delivered at its end: a child started in it and recorded
    before the end cannot be orphaned by a stop that lands between its start and its record (``ctr prepare``'s
    training process went on under init so). A child started in the block inherits the held mask across
    exec: ``release_stop_signals`` in its ``preexec_fn`` lets them through again."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def release_stop_signals() -> None:
    """In a child forked inside ``stop_signals_held``, before its exec: SIGTERM and SIGINT reach it again."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)
