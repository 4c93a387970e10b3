"""A command run with one folder on a real full disk: a small tmpfs mounted over the folder and filled, so every
write into it fails with ``ENOSPC`` (making a folder or an empty file there still works, as on a full tmpfs).

The mount is made in a private mount namespace (``unshare --mount``), as tests/support/read_only_mount.py
makes its own: no other process sees it, and it ends with the command. Making one needs root (CI runs as
root); elsewhere the tests that need it are skipped (``needs_full_disk``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# $1: the folder put on the full disk; the rest: the command, run in the namespace that holds the mount. The
# filling ``dd`` ends with "No space left on device", which is what it is for.
MOUNT_FULL = (
    'mount -t tmpfs -o size=256k tmpfs "$1" && { dd if=/dev/zero of="$1/.filled" bs=4k 2>/dev/null; '
    'cd "$(pwd -P)" && shift && exec "$@"; }'
)


def full_disk_command(folder: Path, command: list[str]) -> list[str]:
    """``command`` run with ``folder`` on a full disk (empty but for the file that fills it)."""
    return ["unshare", "--mount", "sh", "-c", MOUNT_FULL, "sh", str(folder), *command]


@functools.cache
def full_disks_work() -> bool:
    """Whether this machine lets ``full_disk_command`` mount: root, and ``unshare`` allowed (not in every
    container); the mount is checked by a write that must fail."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as folder:
        command = full_disk_command(Path(folder), ["dd", "if=/dev/zero", f"of={folder}/written", "bs=4k", "count=1"])
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return done.returncode != 0 and "No space left on device" in done.stderr


needs_full_disk = pytest.mark.skipif(
    not full_disks_work(), reason="a full tmpfs mount needs root and unshare (CI runs as root)"
)
