"""Metrics of a service run as several processes (``CTR_WORKERS`` > 1, workers.py): one sum for all.

A scrape of ``/metrics`` (or a V2 statistics request) reaches whichever process accepted its connection,
and each process counts only what it answered. So each one writes its counters and its batchers' pending
requests to a directory the processes share (the supervisor's, removed when it exits), every
``WRITE_INTERVAL_S``, and answers with its own live counters plus every other process's latest file: a
sum at most that old for the others' part. A file being replaced is never read half-written (each is
written aside, then renamed over the last).

A process answering a scrape first writes its own file: a later scrape answered by another process then
counts this one's part at least as it was just reported, so no counter goes down between two scrapes
(it did, between scrapes under a second apart answered by different workers, which Prometheus reads as a
counter reset and over-counts in ``rate()``). For the same reason a version one process has forgotten
(no longer served: metrics.py ``Metrics.forget``) leaves the sum at once, not after falling to the others'
part.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from service.metrics import Metrics
from service.process_stats import process_stats
from service.process_stats import summed as summed_process

logger = logging.getLogger(__name__)

WRITE_INTERVAL_S = 1.0
Pending = dict[tuple[str, int], int]
Report = tuple[Metrics, Pending, dict[str, float]]  # counters, pending requests, the processes' figures


class SiblingMetrics:
    """Process ``index``'s side of the shared directory."""

    def __init__(self, directory: Path, index: int) -> None:
        self.directory = directory
        self.index = index

    def _path(self, index: int) -> Path:
        return self.directory / f"worker-{index}.json"

    def write(self, metrics: Metrics, pending: Pending, process: dict[str, float] | None = None) -> None:
        waiting = [[name, version, n] for (name, version), n in pending.items()]
        own = process if process is not None else process_stats()
        saved = {"metrics": metrics.to_dict(), "pending": waiting, "process": own}
        aside = self.directory / f".worker-{self.index}.json.tmp"
        aside.write_text(json.dumps(saved), encoding="utf-8")
        os.replace(aside, self._path(self.index))

    def _write_logged(self, metrics: Metrics, pending: Pending, process: dict[str, float] | None = None) -> None:
        try:
            self.write(metrics, pending, process)
        except OSError as error:
            logger.warning("metrics not shared with the other workers: %s", error)

    def summed(self, metrics: Metrics, pending: Pending, own: dict[str, float] | None = None) -> Report:
        """This process's live ``metrics``, ``pending`` and figures (``own``: its ``figures``) plus every other
        process's latest (this process's file written first: the module docstring)."""
        own = own if own is not None else process_stats()
        self._write_logged(metrics, pending, own)
        total, pending, processes = Metrics(), dict(pending), [own]
        total.add(metrics.to_dict())
        for path in sorted(self.directory.glob("worker-*.json")):
            if path == self._path(self.index):
                continue
            saved = _read(path)
            if saved is None:
                continue
            total.add(saved["metrics"])
            for name, version, n in saved["pending"]:
                pending[(name, version)] = pending.get((name, version), 0) + n
            processes.append(saved.get("process", {}))
        total.without_forgotten()  # a version one process has forgotten: gone from the sum, not fallen first
        return total, pending, summed_process(processes)

    async def keep_written(self, state: Any) -> None:
        """Write this process's counters every ``WRITE_INTERVAL_S`` until cancelled (the app's lifespan)."""
        while True:
            self.write_state(state)
            await asyncio.sleep(WRITE_INTERVAL_S)

    def write_state(self, state: Any) -> None:
        """Write this process's counters, pending requests and figures now (last, as it stops: the others
        sum its file until the service exits, so what it held must read as nothing by then)."""
        self._write_logged(state.metrics, pending_requests(state), figures(state))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # gone with its process, or unreadable: left out of the sum
        logger.warning("metrics of %s left out: %s", path.name, error)
        return None


def reported(state: Any) -> Report:
    """The metrics, pending requests and process figures to report: this process's, or every worker's
    summed."""
    siblings: SiblingMetrics | None = getattr(state, "siblings", None)
    if siblings is None:
        return state.metrics, pending_requests(state), figures(state)
    return siblings.summed(state.metrics, pending_requests(state), figures(state))


def figures(state: Any) -> dict[str, float]:
    """This process's figures: its resources (process_stats.py) and what it holds (http/holdings.py)."""
    holdings = getattr(state, "holdings", None)
    return process_stats() | (holdings.figures() if holdings is not None else {})


def pending_requests(state: Any) -> dict[tuple[str, int], int]:
    """This process's pending requests per model version: the model manager's (draining batchers too), or
    the snapshot's before there is one."""
    manager = getattr(state, "manager", None)
    return manager.pending() if manager is not None else state.models.pending
