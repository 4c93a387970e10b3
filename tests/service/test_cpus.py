"""A container's CPU limit read from the cgroup files as the kernel lays them out (service/cpus.py): v2's
``cpu.max`` and v1's CFS quota, in a cgroup namespace and outside one, the tightest of nested limits; and
what the service does with it (``fitted_to_cpu_limit``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from service.cpus import CpuLimit, affinity_cpus, cpu_limit, threads_under_limit, usable_cpus
from service.server import fitted_to_cpu_limit
from service.settings import Settings


def proc_files(tmp_path: Path, memberships: str, mounts: list[str]) -> tuple[Path, Path]:
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True, exist_ok=True)
    cgroup, mountinfo = proc / "cgroup", proc / "mountinfo"
    cgroup.write_text(memberships, encoding="utf-8")
    mountinfo.write_text("\n".join(mounts) + "\n", encoding="utf-8")
    return cgroup, mountinfo


def write(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(f"{text}\n", encoding="utf-8")


def v2_mount(mount_point: Path, root: str = "/") -> str:
    return f"35 24 0:30 {root} {mount_point} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate"


def v1_mount(mount_point: Path, root: str = "/") -> str:
    return f"32 31 0:29 {root} {mount_point} rw,relatime - cgroup cgroup rw,cpu,cpuacct"


def test_a_v2_limit_in_a_cgroup_namespace(tmp_path: Path) -> None:
    """A container with its own namespace: ``0::/`` and the mount showing its cgroup as the root."""
    mount = tmp_path / "sys" / "fs" / "cgroup"
    write(mount, cpu_max="200000 100000")
    assert cpu_limit(*proc_files(tmp_path, "0::/\n", [v2_mount(mount)])) == CpuLimit(2.0, f"{mount}/cpu.max")


def test_the_tightest_of_nested_v2_limits_counts_and_max_is_none(tmp_path: Path) -> None:
    """A pod's limit stands above its container's: 1.5 CPUs for the pod, none for the container."""
    mount = tmp_path / "cgroup"
    pod, container = mount / "kubepods" / "pod1", mount / "kubepods" / "pod1" / "ctr"
    write(mount, cpu_max="max 100000")
    write(pod, cpu_max="150000 100000")
    write(container, cpu_max="max 100000")
    limit = cpu_limit(*proc_files(tmp_path, "0::/kubepods/pod1/ctr\n", [v2_mount(mount)]))
    assert limit == CpuLimit(1.5, f"{pod}/cpu.max") and limit.whole_cpus == 2
    write(pod, cpu_max="max 100000")
    assert cpu_limit(*proc_files(tmp_path, "0::/kubepods/pod1/ctr\n", [v2_mount(mount)])) is None


def test_a_v1_quota_without_a_namespace_under_a_mount_of_the_containers_folder(tmp_path: Path) -> None:
    """Docker on cgroup v1: /proc/self/cgroup names the host's path; the mount shows that folder alone."""
    mount = tmp_path / "cpu,cpuacct"
    write(mount, cpu_cfs_quota_us="50000", cpu_cfs_period_us="100000")
    memberships = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"
    limit = cpu_limit(*proc_files(tmp_path, memberships, [v1_mount(mount, "/docker/abc"), v2_mount(tmp_path / "u")]))
    assert limit == CpuLimit(0.5, f"{mount}/cpu.cfs_quota_us") and limit.whole_cpus == 1


def test_a_v1_quota_of_minus_one_is_no_limit_and_v1_is_read_before_v2(tmp_path: Path) -> None:
    """On a hybrid system the v2 hierarchy holds no cpu controller: v1's answer stands."""
    cpu, unified = tmp_path / "cpu", tmp_path / "unified"
    write(cpu, cpu_cfs_quota_us="-1", cpu_cfs_period_us="100000")
    write(unified, cpu_max="100000 100000")
    memberships = "1:cpu:/\n0::/\n"
    assert cpu_limit(*proc_files(tmp_path, memberships, [v2_mount(unified), v1_mount(cpu)])) is None


def test_a_mount_point_with_a_space_is_unescaped(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup fs"
    write(mount, cpu_max="300000 100000")
    escaped = str(mount).replace(" ", "\\040")
    assert cpu_limit(*proc_files(tmp_path, "0::/\n", [v2_mount(Path(escaped))])) == CpuLimit(3.0, f"{mount}/cpu.max")


def test_what_cannot_be_read_is_no_limit(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup"
    assert cpu_limit(tmp_path / "missing", tmp_path / "missing") is None
    write(mount)  # no cpu.max: the cpu controller not handed down to this cgroup
    assert cpu_limit(*proc_files(tmp_path, "0::/\n", [v2_mount(mount)])) is None
    write(mount, cpu_max="garbage")
    assert cpu_limit(*proc_files(tmp_path, "0::/\n", [v2_mount(mount)])) is None
    write(mount, cpu_max="100000 100000")  # a process in a cgroup the mount does not show
    assert cpu_limit(*proc_files(tmp_path, "0::/elsewhere\n", [v2_mount(mount, "/mine")])) is None


def test_threads_share_the_limit_between_workers_only_below_the_cpus_seen() -> None:
    cpus = affinity_cpus()
    assert threads_under_limit(None, 1) is None
    assert threads_under_limit(CpuLimit(float(cpus), "cpu.max"), 1) is None
    assert usable_cpus(CpuLimit(cpus + 8.0, "cpu.max")) == cpus
    if cpus < 2:
        pytest.skip("a limit below the CPUs seen needs two of them")
    assert threads_under_limit(CpuLimit(cpus - 0.5, "cpu.max"), 1) is None  # rounded up: as many as the CPUs seen
    assert threads_under_limit(CpuLimit(1.0, "cpu.max"), 1) == 1
    assert threads_under_limit(CpuLimit(1.0, "cpu.max"), 3) == 1
    assert usable_cpus(CpuLimit(0.2, "cpu.max")) == 1


def test_the_service_settings_follow_the_limit_unless_the_threads_were_chosen(caplog: pytest.LogCaptureFixture) -> None:
    if affinity_cpus() < 2:
        pytest.skip("a limit below the CPUs seen needs two of them")
    limit = CpuLimit(1.0, "/sys/fs/cgroup/cpu.max")
    with caplog.at_level(logging.INFO, logger="service.server"):
        assert fitted_to_cpu_limit(Settings(), None) == Settings()
        assert fitted_to_cpu_limit(Settings(), limit).intra_op_threads == 1
        assert "a CPU limit of 1 CPUs (/sys/fs/cgroup/cpu.max)" in caplog.text
        chosen = Settings(intra_op_threads=4)
        assert fitted_to_cpu_limit(chosen, limit) == chosen
        assert "CTR_INTRA_OP_THREADS=4 in each of 1 worker(s) is more than the CPU limit of 1 CPUs" in caplog.text


def test_threads_chosen_beyond_the_cpus_are_warned_of_without_a_limit(caplog: pytest.LogCaptureFixture) -> None:
    """``CTR_INTRA_OP_THREADS=400`` started 1,201 threads on 2 cores without a word: only a CPU limit was heeded."""
    cpus = affinity_cpus()
    with caplog.at_level(logging.WARNING, logger="service.server"):
        fitted_to_cpu_limit(Settings(intra_op_threads=cpus), None)
        assert not caplog.records  # one a CPU: the rule
        chosen = Settings(intra_op_threads=cpus, workers=2)
        assert fitted_to_cpu_limit(chosen, None) == chosen
    said = caplog.records[0].getMessage()
    assert said.startswith(f"CTR_INTRA_OP_THREADS={cpus} in each of 2 worker(s) is more than the {cpus} CPUs"), said
