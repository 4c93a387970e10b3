"""A command run with one folder on a real read-only mount, as a locked-down container mounts a model
repository: its writes fail with ``EROFS``, which no ``chmod`` gives (root writes through a mode of 0555,
and ``os.access`` answers from the mode bits alone).

The mount is a read-only bind of the folder onto itself in a private mount namespace (``unshare --mount``):
no other process sees it, and it ends with the command. Making one needs root, or a user namespace
(tests/support/mount_namespace.py); elsewhere the tests that need it are skipped (``needs_read_only_mount``).
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.mount_namespace import PRIVATE_MOUNTS, unshare_found

# $1: the folder made read-only; the rest: the command, run in the namespace that holds the mount. The
# working directory is entered again by its path: one inside the folder was entered before the mount, and
# writes through it would pass beneath the mount.
MOUNT_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && cd "$(pwd -P)" && shift && exec "$@"'


def read_only_command(folder: Path, command: list[str]) -> list[str]:
    """``command`` run with ``folder`` read-only."""
    return [*PRIVATE_MOUNTS, "sh", "-c", MOUNT_READ_ONLY, "sh", str(folder), *command]


@functools.cache
def read_only_mounts_work() -> bool:
    """Whether this machine lets ``read_only_command`` mount (``unshare`` allowed, as root or in a user
    namespace: not in every container); the mount is checked by a write that must fail."""
    if not unshare_found():
        return False
    with tempfile.TemporaryDirectory() as folder:
        command = read_only_command(Path(folder), ["sh", "-c", 'touch "$0/written"', folder])
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return done.returncode != 0 and "Read-only file system" in done.stderr


needs_read_only_mount = pytest.mark.skipif(
    not read_only_mounts_work(), reason="a read-only bind mount needs unshare, as root or in a user namespace"
)
