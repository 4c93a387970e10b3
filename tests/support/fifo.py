"""A FIFO where a model repository's file should be, for tests of code that must not wait on one.

``open`` of a FIFO for reading waits for a writer. Code that still does would hang its test for good; so a
writer opens and closes the FIFO once its reader has waited ``release_after_s``, which ends the wait (the
reader reads an empty file): the test then fails on what the code made of it, in seconds, rather than hangs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RELEASE_AFTER_S = 3.0


@contextmanager
def fifo_at(path: Path, release_after_s: float = RELEASE_AFTER_S) -> Iterator[Path]:
    """A FIFO made at ``path`` (a file there is replaced), whose waiting readers are released every
    ``release_after_s`` until the block ends."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    ended = threading.Event()

    def release() -> None:
        while not ended.wait(release_after_s):
            try:  # without O_NONBLOCK, this open would wait for a reader in turn: none is there unless one waits
                descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader waiting (ENXIO), or the FIFO is gone
                continue
            os.close(descriptor)

    releaser = threading.Thread(target=release, name=f"release {path.name}", daemon=True)
    releaser.start()
    try:
        yield path
    finally:
        ended.set()
        releaser.join()
