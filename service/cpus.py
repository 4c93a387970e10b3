"""The CPUs this process may use: its affinity mask, and a container's CPU limit (a cgroup CPU quota).

A container on a large node is given a share of its cores by a quota (Kubernetes' ``resources.limits.cpu``,
``docker run --cpus``): the kernel lets the container's threads run for ``quota`` µs of every ``period`` µs,
all its cores together, and pauses them for the rest of the period once they have used it. Nothing else in
the process sees that quota: ``os.cpu_count()`` and the affinity mask still count the node's cores, and ONNX
Runtime sizes each session's thread pool from them (64 threads per operator on a 64-core node under a limit
of 2 CPUs, taking turns on the quota). So the limit is read here,
as Go's runtime (1.25) and the JVM read it: cgroup v2's ``cpu.max`` or v1's ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``, at the process's own cgroup and every cgroup above it up to the mount's root (a pod's
limit stands above its container's), the smallest taken.

Where the process's cgroup is found: ``/proc/self/cgroup`` names it, relative to the hierarchy's root, and
``/proc/self/mountinfo`` says where that hierarchy is mounted and which of its folders the mount shows (a
container with its own cgroup namespace sees ``/``; one without sees the host's path, its mount showing
only its own folder). Whatever cannot be read counts as no limit: the affinity mask alone, as before.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
PROC_MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class CpuLimit:
    """A cgroup's CPU quota: ``cpus`` CPUs' worth of time (quota / period), read from ``source``."""

    cpus: float
    source: str

    @property
    def whole_cpus(self) -> int:
        """The CPUs worth a thread each: the quota rounded up (1.5 CPUs keep two threads busy part-time)."""
        return max(1, math.ceil(self.cpus))


@dataclass(frozen=True)
class CgroupMount:
    version: int  # 1 or 2
    root: str  # the hierarchy's folder the mount shows
    mount_point: Path


def affinity_cpus() -> int:
    """The CPUs the process's affinity mask lets it run on (every CPU where the system has no mask)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def usable_cpus(limit: CpuLimit | None = None) -> int:
    """The CPUs this process may use: its affinity mask, fewer where a CPU limit allows less time."""
    cpus = affinity_cpus()
    return min(cpus, limit.whole_cpus) if limit else cpus


def cpu_limit(proc_cgroup: Path = PROC_CGROUP, proc_mountinfo: Path = PROC_MOUNTINFO) -> CpuLimit | None:
    """The tightest CPU quota over this process's cgroup and those above it; None where there is none (or
    it cannot be read: not Linux, no cgroup file system mounted)."""
    try:
        memberships = proc_cgroup.read_text(encoding="utf-8").splitlines()
        mounts = cpu_mounts(proc_mountinfo.read_text(encoding="utf-8").splitlines())
    except OSError:
        return None
    for mount in mounts:  # v1's cpu controller first: on a hybrid system v2's hierarchy has no cpu controller
        path = cgroup_path(memberships, mount.version)
        if path is None:
            continue
        folder = folder_of(path, mount)
        if folder is None:
            continue
        return tightest_quota(folder, mount)
    return None


def cpu_mounts(mountinfo: list[str]) -> list[CgroupMount]:
    """The cgroup hierarchies that can hold a CPU quota: v1 mounts of the ``cpu`` controller, then v2's."""
    found: list[CgroupMount] = []
    for line in mountinfo:
        before, separator, after = line.partition(" - ")
        fields, described = before.split(), after.split()
        if not separator or len(fields) < 5 or len(described) < 3:
            continue
        root, mount_point = unescaped(fields[3]), Path(unescaped(fields[4]))
        if described[0] == "cgroup" and "cpu" in described[2].split(","):
            found.append(CgroupMount(1, root, mount_point))
        elif described[0] == "cgroup2":
            found.append(CgroupMount(2, root, mount_point))
    return sorted(found, key=lambda mount: mount.version)


def unescaped(field: str) -> str:
    """A mountinfo path: the kernel writes a space, tab, newline and backslash as octal escapes (``\\040``)."""
    for code, character in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, character)
    return field


def cgroup_path(memberships: list[str], version: int) -> str | None:
    """The process's cgroup in the v1 ``cpu`` hierarchy or the v2 one, from ``/proc/self/cgroup``'s
    ``id:controllers:path`` lines (v2's is ``0::path``)."""
    for line in memberships:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if version == 1 and "cpu" in controllers.split(","):
            return path
        if version == 2 and hierarchy == "0" and not controllers:
            return path
    return None


def folder_of(path: str, mount: CgroupMount) -> Path | None:
    """The cgroup's folder under the mount, or None where the mount does not show it."""
    if mount.root == "/":
        relative = path
    elif path == mount.root or path.startswith(mount.root.rstrip("/") + "/"):
        relative = path[len(mount.root) :]
    else:
        return None
    return mount.mount_point / relative.lstrip("/")


def tightest_quota(folder: Path, mount: CgroupMount) -> CpuLimit | None:
    """The smallest quota from the cgroup's folder up to the mount point."""
    tightest: CpuLimit | None = None
    current = folder
    while True:
        quota = quota_in(current, mount.version)
        if quota is not None and (tightest is None or quota.cpus < tightest.cpus):
            tightest = quota
        if current == mount.mount_point or mount.mount_point not in current.parents:
            return tightest
        current = current.parent


def quota_in(folder: Path, version: int) -> CpuLimit | None:
    """One cgroup's quota: v2 ``cpu.max`` ("max 100000" or "200000 100000"), v1 ``cpu.cfs_quota_us`` (-1
    for none) over ``cpu.cfs_period_us``."""
    try:
        if version == 2:
            source = folder / "cpu.max"
            quota, period = source.read_text(encoding="utf-8").split()[:2]
        else:
            source = folder / "cpu.cfs_quota_us"
            quota = source.read_text(encoding="utf-8").strip()
            period = (folder / "cpu.cfs_period_us").read_text(encoding="utf-8").strip()
        if quota in ("max", "-1"):
            return None
        cpus = int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return CpuLimit(cpus, str(source)) if cpus > 0 else None


def threads_under_limit(limit: CpuLimit | None, workers: int) -> int | None:
    """ONNX Runtime's threads per operator in each worker where a CPU limit allows fewer CPUs than the
    affinity mask shows: the limit's whole CPUs shared by the workers (the quota is the whole container's),
    at least one. None otherwise: ONNX Runtime's own default (one a physical core) then fits."""
    if limit is None or limit.whole_cpus >= affinity_cpus():
        return None
    return max(1, limit.whole_cpus // workers)
