"""Rename a path into place only where nothing is: ``os.rename`` of a directory silently replaces an EMPTY
directory at the target (POSIX), so a version folder an operator's ``cp -r`` had just made (empty, about to be
filled) became the exporter's published version, and the copy then wrote into it.

On Linux ``renameat2(..., RENAME_NOREPLACE)`` makes the check and the rename one step. Where the C library
lacks it, or the file system refuses the flag (EINVAL: some network file systems), the target's existence is
checked just before ``os.rename``: a window remains there, but only for a writer that takes no lock.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path

AT_FDCWD = -100  # <fcntl.h>: paths relative to the working directory
RENAME_NOREPLACE = 1  # <linux/fs.h>


def _renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28+, musl 1.2.5+
    except (AttributeError, OSError):  # no such symbol, or no C library to ask (not a POSIX system)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


RENAMEAT2 = _renameat2()


def rename_no_replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; FileExistsError (and nothing renamed) when ``target`` exists."""
    if RENAMEAT2 is not None:
        if RENAMEAT2(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(code, os.strerror(code), str(target))
        if code not in (errno.EINVAL, errno.ENOSYS):  # EINVAL/ENOSYS: the flag is not supported here
            raise OSError(code, os.strerror(code), str(source), None, str(target))
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)
