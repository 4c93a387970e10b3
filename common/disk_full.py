"""A write that failed because the disk is full, told apart where the writer did not say so: torch.save ends in
``RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0`` and numpy's array writer in
``OSError: 1600 requested and 992 written``, neither with an errno. Such an error, on a file system with no room
left, is taken for the ``ENOSPC`` it is, so that the command says "No space left on device" in one line
(cli/errors.py) rather than a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

# room below which a write that failed without an errno is taken for a full disk's (a block or two is all a
# full file system keeps; a failed write of another cause, on a disk with room, keeps its own error)
FULL_BELOW_BYTES = 1 << 20


def raise_if_disk_full(error: BaseException, folder: Path, note: str) -> None:
    """Raise the ``ENOSPC`` that ``error``, raised writing into ``folder``, stands for (from ``error``, with
    ``note`` saying what was being written); nothing when it has an errno of its own (already said) or the
    disk has room."""
    if isinstance(error, OSError) and error.errno is not None:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < FULL_BELOW_BYTES:
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        full.add_note(note)
        raise full from error
