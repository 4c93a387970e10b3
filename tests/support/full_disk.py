"""A command run with one folder on a full file system, as a disk fills under a long job: its writes of data
fail with ``ENOSPC``, while names (folders, empty files) can still be made.

The folder's content is copied onto a small ``tmpfs`` mounted over it in a private mount namespace
(``unshare --mount``), which a filler file then fills: no other process sees it, and it ends with the command.
Making one needs root, or a user namespace (tests/support/mount_namespace.py); elsewhere the tests that need it
are skipped (``needs_full_disk``).
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.mount_namespace import PRIVATE_MOUNTS, unshare_found

# $1: the folder filled; the rest: the command, run in the namespace that holds the mount (the working directory
# entered again by its path, as tests/support/read_only_mount.py does).
MOUNT_FULL = (
    'kept=$(mktemp -d) && cp -a "$1/." "$kept" && mount -t tmpfs -o size=1m tmpfs "$1" && cp -a "$kept/." "$1" '
    '&& rm -rf "$kept" && { dd if=/dev/zero of="$1/.filler" bs=4k 2>/dev/null; true; } '
    '&& cd "$(pwd -P)" && shift && exec "$@"'
)


def full_disk_command(folder: Path, command: list[str]) -> list[str]:
    """``command`` run with ``folder`` (and what it holds) on a full file system."""
    return [*PRIVATE_MOUNTS, "sh", "-c", MOUNT_FULL, "sh", str(folder), *command]


@functools.cache
def full_disks_work() -> bool:
    """Whether this machine lets ``full_disk_command`` mount (``unshare`` allowed, as root or in a user
    namespace); checked by a write that must fail for want of space."""
    if not unshare_found():
        return False
    with tempfile.TemporaryDirectory() as folder:
        write = ["sh", "-c", 'head -c 65536 /dev/zero > "$0/written"', folder]
        done = subprocess.run(full_disk_command(Path(folder), write), capture_output=True, text=True, timeout=30)
        return done.returncode != 0 and "No space left on device" in done.stderr


needs_full_disk = pytest.mark.skipif(
    not full_disks_work(), reason="a full tmpfs mount needs unshare, as root or in a user namespace"
)
