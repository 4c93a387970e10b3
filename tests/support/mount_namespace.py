"""The command that runs another in a mount namespace of its own, where a test may mount (a read-only bind, a
full tmpfs) without any other process seeing it: ``unshare --mount`` as root (CI), and for another user
``unshare --user --map-root-user --mount``, an unprivileged user namespace in which the user is root, where the
kernel allows them (most do; a container may not). Each kind of mount checks that its own works before a test
relies on it (read_only_mount.py, full_disk.py)."""

from __future__ import annotations

import os
import shutil

# the command line that gives a mount namespace of its own
PRIVATE_MOUNTS = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]


def unshare_found() -> bool:
    return shutil.which("unshare") is not None
