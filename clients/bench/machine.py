"""The machine a benchmark runs on, as its reports read it: the CPU time of a process and of the tree
of processes under it, the host's CPU time by kind (the hypervisor's steal among them), and a
description of the machine for a report's ``machine`` field.

Read from Linux's /proc; elsewhere the readings are None. (Not the service's own figures for
``/metrics``: those are service/process_stats.py.)
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process now alive."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="utf-8")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process under it."""
    tree, found, stack = _children(), [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(tree.get(current, ()))
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of ``pid`` and every live process under it (a service run as a
    supervisor and its workers); None where ``pid``'s cannot be read."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(cpu_seconds(child) or 0.0 for child in descendants(pid)[1:])


def steal_pct_since(steal_before: float | None, seconds: float) -> float | None:
    """The host's steal since ``steal_before`` (a ``steal_seconds()`` reading), as % of one CPU over
    ``seconds``; None where it cannot be read."""
    steal_after = steal_seconds()
    if steal_before is None or steal_after is None or seconds <= 0:
        return None
    return round(100 * (steal_after - steal_before) / seconds, 1)


HOST_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def host_cpu_seconds() -> dict[str, float] | None:
    """The host's CPU time since boot by kind, all CPUs together (Linux /proc/stat's first line: user,
    system, idle, steal, ...); None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    if len(fields) < len(HOST_CPU_FIELDS):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return {name: int(value) / hz for name, value in zip(HOST_CPU_FIELDS, fields, strict=False)}


def steal_seconds() -> float | None:
    """CPU time the hypervisor has given other guests since boot, all CPUs together (``steal``; None
    where it cannot be read): a step that saw much of it measured a contended host."""
    host = host_cpu_seconds()
    return host["steal"] if host is not None else None


def machine() -> dict[str, Any]:
    """The machine for a report: platform, Python, CPUs, ONNX Runtime and its providers, load average."""
    import onnxruntime as ort

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "load_average": list(os.getloadavg()),
    }
