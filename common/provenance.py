"""What code produced a result, and on what: the versions of the packages that shape it, the git commit,
and the CPU and kernel path its floating-point sums took.

Reruns with the same seed are identical, yet two machines gave scores 1-10 % apart (docs/results.md)
with nothing recorded to tell their environments apart: only torch is pinned. model.json (the
exporter) and the report of every ``ctr`` command that measures something (cli/reports.py) record
``provenance()``. The versions are read from the installed distributions' metadata, so nothing is
imported for them (the service never imports torch); the commit is that of the checkout the code runs
from, absent when it runs from an installed package, with ``dirty`` when tracked files differ from it.

The same code and packages still train other bytes where MKL's and ATen's kernels round differently: with
``MKL_CBWR=COMPATIBLE`` (MKL's other code path) this machine trained an esmm whose scores differ by 5-9 % (median)
from the default path's (docs/results.md, "Timings"). So ``machine`` names the CPU, the kernel path torch
dispatches to and its thread count (only where torch is already imported: this module never imports it, and
a process that never did, the service, ran no torch kernel), and the variables set that choose MKL's, OpenMP's,
oneDNN's or ATen's path. They are those of the process that writes the record: for model.json, ``ctr train``
or ``ctr prepare``'s process, which trains and exports; a ``ctr export`` of a checkpoint names its own.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from common.version import DISTRIBUTION, VERSION

# The distributions whose versions can change a number: this project, the arrays, the training, the
# exported graph and its runtime (one of the two installed), the logs' reader.
PACKAGES = ("numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "pyarrow")
GIT_TIMEOUT_S = 2.0
CHECKOUT = Path(__file__).resolve().parents[1]  # the folder holding common/: a checkout's root when run from one
CPUINFO = Path("/proc/cpuinfo")
# Variables that pick a math library's code path or thread count, and with them the order of a sum's terms:
# MKL_CBWR, MKL_NUM_THREADS, OMP_NUM_THREADS, DNNL_MAX_CPU_ISA / ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY, ...
KERNEL_VARIABLE_PREFIXES = ("MKL_", "OMP_", "KMP_", "DNNL_", "ONEDNN_", "ATEN_")


def provenance() -> dict[str, Any]:
    """``{"packages": {"debiased-ctr": ..., "python": ..., "numpy": ..., ...}, "git": {"commit": ...,
    "dirty": ...}, "machine": {...}}``; a package not installed is left out, and ``git`` where the code is no
    checkout. No date nor host name: two records of the same code on the same kind of machine are equal."""
    record: dict[str, Any] = {"packages": package_versions()}
    git = git_state(CHECKOUT)
    if git is not None:
        record["git"] = git
    record["machine"] = machine()
    return record


def machine() -> dict[str, Any]:
    """``{"cpu": "AMD EPYC 9B14", "torch_cpu_capability": "AVX512", "torch_threads": 1, "environment":
    {"OMP_NUM_THREADS": "1"}}``: what the floating-point results depend on beside the packages. The torch
    entries only where torch is already imported (importing it here would cost a service seconds and memory, to
    name kernels it never runs); ``environment`` only where such a variable is set, ``cpu`` where it is known."""
    record: dict[str, Any] = {}
    cpu = cpu_model()
    if cpu:
        record["cpu"] = cpu
    torch = sys.modules.get("torch")
    if torch is not None:
        record["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        record["torch_threads"] = torch.get_num_threads()
    environment = {key: value for key, value in sorted(os.environ.items()) if key.startswith(KERNEL_VARIABLE_PREFIXES)}
    if environment:
        record["environment"] = environment
    return record


@functools.cache  # the CPU does not change under a running process
def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name as the kernel reports it (``model name`` in /proc/cpuinfo); where there is no such
    line or no /proc (macOS, Windows, an ARM board), what ``platform.processor()`` says, possibly ""."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor()


def package_versions() -> dict[str, str]:
    versions = {DISTRIBUTION: VERSION, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache  # one process, one checkout: asked once, however many reports it writes
def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out at ``folder`` and whether tracked files differ from it; None where ``folder``
    is no git checkout, git is not installed, or it does not answer within GIT_TIMEOUT_S."""
    if not (folder / ".git").exists():  # a directory in a clone, a file in a worktree; absent in a wheel
        return None
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        changed = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changed)}


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
    )
    return done.stdout.strip()
