"""Opening a model repository's file for reading without blocking on one that is not a plain file.

``open`` of a FIFO waits for a writer, forever where none comes: a version whose ``model.onnx`` was a FIFO
(``mkfifo``) held the service's poll thread in ``open`` with the models' lock taken, kept ``ctr serve`` at
"Waiting for application startup." deaf to SIGTERM, and hung ``ctr prepare`` without a word. The file is
therefore opened with ``O_NONBLOCK`` (a FIFO's ``open`` returns at once), the descriptor opened is checked
with ``fstat`` (not the path before it: another file could be put in its place between the two) and refused
unless it is a regular file; a regular file is read as usual (``O_NONBLOCK`` means nothing to one, and is
cleared all the same). A socket, which ``open`` refuses with ENXIO, is said as one too; a folder raises the
IsADirectoryError that ``open`` raised of one.

A read that fails inside the block (a disk's EIO) says no file: it is raised again naming the path, so that
whoever says it can say which file the storage failed under.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

NOT_BLOCKING = getattr(os, "O_NONBLOCK", 0)  # not on Windows, which has no FIFO in its file systems
NOT_REGULAR = "is not a regular file (a FIFO, device or socket): a model repository's files are plain files"


class NotRegularFile(OSError, ValueError):
    """A path that names a FIFO, a device or a socket where a plain file is read. An OSError, so that the
    readers that refuse an unreadable file refuse it too, and a ValueError, as ``io.UnsupportedOperation``
    is: not the storage's failure but what was put there, which ``ctr`` says as a mistake (cli/errors.py)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(f"{os.fspath(path)} {NOT_REGULAR}")
        self.filename = os.fspath(path)

    def __str__(self) -> str:  # OSError's, with a filename, is "[Errno None] None: 'path'"
        return str(self.args[0])


@contextmanager
def regular_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``path`` open for reading in binary; NotRegularFile (at once) when it is not a regular file. An
    OSError naming no file raised in the block is raised again naming ``path``."""
    try:
        descriptor = os.open(path, os.O_RDONLY | NOT_BLOCKING)
    except OSError as error:
        if error.errno == errno.ENXIO and not _is_regular(path):  # a socket: no open reaches one
            raise NotRegularFile(path) from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):  # as ``open`` says of one
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path)
        if NOT_BLOCKING:
            os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as file:
        try:
            yield file
        except OSError as error:
            if error.filename is not None or error.errno is None:
                raise
            raise OSError(error.errno, error.strerror, os.fspath(path)) from error


def read_regular_text(path: Path) -> str:
    """The UTF-8 text of the regular file ``path`` (``regular_file``)."""
    with regular_file(path) as file:
        return file.read().decode("utf-8")


def _is_regular(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
