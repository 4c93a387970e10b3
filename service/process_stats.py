"""The process's own resource figures for ``/metrics``, under the names every Prometheus client library
gives them (``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ``process_open_fds``,
``process_start_time_seconds``): a restart, a leak or CPU saturation shows without a node exporter.

Read from ``/proc/self`` where there is one (Linux); elsewhere CPU time and the start time only. With
several worker processes the figures are summed over them (the start time: the earliest), as the
counters are (sibling_metrics.py); the supervisor that starts them, which answers no request, is not counted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_STARTED = time.time()  # this module is imported as the service starts: the process's start, near enough
_PROC = Path("/proc/self")


def process_stats() -> dict[str, float]:
    """This process's figures now: ``cpu_seconds``, ``start_time_seconds``, and where /proc tells,
    ``resident_memory_bytes`` and ``open_fds``."""
    stats = {"cpu_seconds": time.process_time(), "start_time_seconds": _STARTED}
    try:
        resident_pages = int((_PROC / "statm").read_text(encoding="utf-8").split()[1])
        stats["resident_memory_bytes"] = resident_pages * os.sysconf("SC_PAGE_SIZE")
        stats["open_fds"] = len(os.listdir(_PROC / "fd"))
    except (OSError, ValueError, IndexError):
        pass
    return stats


def summed(stats: list[dict[str, float]]) -> dict[str, float]:
    """Several processes' figures as one service's: sums, and the earliest start."""
    total: dict[str, float] = {}
    for one in stats:
        for name, value in one.items():
            if name == "start_time_seconds":
                total[name] = min(total.get(name, value), value)
            else:
                total[name] = total.get(name, 0) + value
    return total


def lines(stats: dict[str, float]) -> list[str]:
    """The exposition lines (HELP, TYPE, sample) of each figure known."""
    out = []
    for name, kind, text in FAMILIES:
        if name in stats:
            family = f"process_{name}" + ("_total" if kind == "counter" else "")
            out += [f"# HELP {family} {text}", f"# TYPE {family} {kind}", f"{family} {float(stats[name])!r}"]
    return out


FAMILIES = (
    ("cpu_seconds", "counter", "CPU time (user and system) of the serving processes (not a supervisor), in seconds."),
    ("resident_memory_bytes", "gauge", "Resident memory of the serving processes (not a supervisor), in bytes."),
    ("open_fds", "gauge", "Open file descriptors of the serving processes (not a supervisor)."),
    ("start_time_seconds", "gauge", "Start of the service's (first) process, in seconds since the epoch."),
)
