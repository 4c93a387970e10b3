"""A command run in a cgroup of its own with a CPU quota, as a container runs under a CPU limit
(Kubernetes' ``resources.limits.cpu``): a child of the cgroup file system's root, v1's ``cpu`` hierarchy
(``cpu.cfs_quota_us``) or v2's (``cpu.max``), made for the block and removed after it.

Making one needs root and a writable cgroup file system (not in every container); elsewhere the tests that
need it are skipped (``needs_cpu_quota``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.cpus import cpu_mounts

# $0: the cgroup's cgroup.procs; the rest: the command, which the shell becomes (exec) once it has moved itself
JOIN_CGROUP = 'echo $$ > "$0" && exec "$@"'
PERIOD_US = 100_000


def quota_command(cgroup: Path, command: list[str]) -> list[str]:
    """``command`` run in ``cgroup`` (one ``cpu_quota`` made), from its first instruction."""
    return ["sh", "-c", JOIN_CGROUP, str(cgroup / "cgroup.procs"), *command]


@contextlib.contextmanager
def cpu_quota(cpus: float) -> Iterator[Path]:
    """A new cgroup allowing ``cpus`` CPUs' worth of time; removed when the block ends (once the processes
    the block put in it have exited)."""
    mount = _writable_mount()
    assert mount is not None, "a test that makes a CPU quota is marked needs_cpu_quota"
    folder = mount[1] / f"ctr-test-{secrets.token_hex(4)}"
    folder.mkdir()
    try:
        quota = str(round(cpus * PERIOD_US))
        if mount[0] == 2:
            (folder / "cpu.max").write_text(f"{quota} {PERIOD_US}", encoding="utf-8")
        else:
            (folder / "cpu.cfs_period_us").write_text(str(PERIOD_US), encoding="utf-8")
            (folder / "cpu.cfs_quota_us").write_text(quota, encoding="utf-8")
        yield folder
    finally:
        for _ in range(50):  # a process stopped at the block's end leaves the cgroup as it is reaped
            with contextlib.suppress(OSError):
                folder.rmdir()
                break
            time.sleep(0.1)


@functools.cache
def _writable_mount() -> tuple[int, Path] | None:
    """The cgroup version and root folder where this process may make a cgroup with a CPU quota."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(OSError):
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
        for mount in cpu_mounts(lines):
            quota_file = "cpu.max" if mount.version == 2 else "cpu.cfs_quota_us"
            probe = mount.mount_point / f"ctr-probe-{secrets.token_hex(4)}"
            try:
                probe.mkdir()
            except OSError:
                continue
            try:
                if (probe / quota_file).exists():  # v2: only where the root hands the cpu controller down
                    return mount.version, mount.mount_point
            finally:
                probe.rmdir()
    return None


needs_cpu_quota = pytest.mark.skipif(
    _writable_mount() is None, reason="a cgroup with a CPU quota needs root and a writable cgroup file system"
)
