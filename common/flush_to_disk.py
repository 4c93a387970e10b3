"""Make what was written survive a power loss before a rename makes it visible.

A rename is atomic for readers, not for the disk: ext4 and XFS may write the rename's directory entry before the
data of the files renamed with it, so a machine that lost power just after a publish could come back with a
version folder in place whose ``model.onnx`` is empty or cut short (the service refuses it on its checksum, and
the model has lost its newest version until someone removes the wreck). The files and the folder are therefore
flushed (``fsync``) before the rename, and the folder that holds the renamed entry after it, as git does for the
objects it renames into place (``core.fsync``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

# what fsync of a directory answers where the file system cannot flush one
UNFLUSHABLE_FOLDER_ERRNOS = {errno.EINVAL, errno.ENOTSUP, errno.EBADF}


def flush_folder(folder: Path) -> None:
    """``fsync`` each regular file directly in ``folder``, then ``folder`` itself (its entries)."""
    with os.scandir(folder) as entries:
        files = [Path(entry.path) for entry in entries if entry.is_file(follow_symlinks=False)]
    for path in files:
        flush_file(path)
    flush_entries(folder)


def flush_file(path: Path) -> None:
    """``fsync`` the file at ``path``: its data and size on the disk. (Windows flushes only a file open for
    writing: FlushFileBuffers.)"""
    _fsync(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)


def flush_entries(folder: Path) -> None:
    """``fsync`` ``folder`` itself, so that the names made, renamed or removed in it are on the disk. Not
    possible where a directory cannot be opened (not a POSIX system): nothing is done there. A file system that
    cannot flush a directory (EINVAL: some network and FUSE ones) is let be: this is called after the rename,
    and an error would call a write failed that is in place (a retry would publish a second copy)."""
    if os.name != "posix":
        return
    try:
        _fsync(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        if error.errno not in UNFLUSHABLE_FOLDER_ERRNOS:
            raise


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
