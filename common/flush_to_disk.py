"""Make what was written survive a power loss before a rename makes it visible.

A rename is atomic for readers, not for the disk: ext4 and XFS may write the rename's directory entry before the
data of the files renamed with it, so a machine that lost power just after a publish could come back with a
version folder in place whose ``model.onnx`` is empty or cut short (the service refuses it on its checksum, and
the model has lost its newest version until someone removes the wreck). The files and the folder are therefore
flushed (``fsync``) before the rename, and the folder that holds the renamed entry after it, as git does for the
objects it renames into place (``core.fsync``).
"""

from __future__ import annotations

import os
from pathlib import Path


def flush_folder(folder: Path) -> None:
    """``fsync`` each regular file directly in ``folder``, then ``folder`` itself (its entries)."""
    with os.scandir(folder) as entries:
        files = [Path(entry.path) for entry in entries if entry.is_file(follow_symlinks=False)]
    for path in files:
        flush_file(path)
    flush_entries(folder)


def flush_file(path: Path) -> None:
    """``fsync`` the file at ``path``: its data and size on the disk."""
    _fsync(path, os.O_RDONLY)


def flush_entries(folder: Path) -> None:
    """``fsync`` ``folder`` itself, so that the names made, renamed or removed in it are on the disk. Not
    possible where a directory cannot be opened (not a POSIX system): nothing is done there."""
    if os.name == "posix":
        _fsync(folder, os.O_RDONLY | os.O_DIRECTORY)


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
