"""How a batch is formed, as plain functions over a queue (DESIGN.md §5), tested without a server.

A batch holds at most ``max_batch_size`` **items** (candidates, query rows), taken from the head of the
queue in arrival order; a request larger than the room left is split across batches. The worker waits
for a batch to fill at most ``max_queue_delay_us`` after the oldest queued request, and only while other
requests are expected within that wait (``ArrivalRate``): a lone request at a low rate runs at once. What a request's
inputs are (encoded tensors, raw feature rows) is the model's business: it supplies ``collate``
(slices -> one input batch); outputs are split back by rows here.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Tensors = dict[str, np.ndarray]
# A request is admitted when its expected wait fits in this share of its remaining time: the estimate
# is an average, and one that only just fits is as likely as not to end in a 504 after all
ADMIT_WITHIN = 0.75
# The fill wait is for company: it is skipped when fewer other requests than this are expected to arrive
# within it at the recent arrival rate. Waiting cost a lone request ~1 ms of latency and 14-16 % more CPU
# at 400 req/s, and saved 28-42 % of the CPU per request at 2,000-6,000 (docs/serving.md, "Waiting for company")
EXPECTED_COMPANY = 0.5


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 1024  # items per run
    max_queue_delay_us: int = 500  # longest wait for a batch to fill after its oldest request (EXPECTED_COMPANY)
    max_queue_items: int = 16384  # queued items beyond this are refused with 503
    instances: int = 1  # batches run at once (concurrent runs of the thread-safe session)
    # batches of at most this many items run on the event loop itself, not the model's thread (0: none):
    # for a small run the hand-over to the thread and back costs more than the run (docs/serving.md)
    inline_max_items: int = 0
    enabled: bool = True  # False: each request runs alone in the thread pool, no queue
    retry_after_s: int = 1  # told to clients refused by a full queue


@dataclass(eq=False, slots=True)
class Work:
    """One request in the queue: ``n_items`` rows of inputs and when it must be answered by."""

    inputs: Any  # the model's payload: encoded tensors (n_items, ...) or raw rows its collate encodes
    n_items: int
    deadline: float  # monotonic seconds (the event loop's clock)
    enqueued: float
    next_item: int = 0  # first row not yet placed in a batch
    abandoned: bool = False  # the caller gave up (cancelled or timed out): drop what is not yet batched
    future: asyncio.Future | None = None  # its outcome; awaited by the caller
    parts: list[tuple[int, Tensors]] = field(default_factory=list)  # (first row, outputs) per finished slice
    done_items: int = 0
    waited: float = 0.0  # seconds from ``enqueued`` until the run of its first rows began (its queue time)
    settled: bool = False  # its outcome is decided (and counted in the stats), once


@dataclass(frozen=True)
class Slice:
    """Rows ``start:stop`` of one request, placed in a batch."""

    work: Work
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def form_batch(pending: deque[Work], max_items: int, now: float) -> tuple[list[Slice], list[Work]]:
    """Take up to ``max_items`` rows from the head of ``pending``, in arrival order.

    Returns the batch's slices and the requests dropped on the way (abandoned, or past their deadline).
    A request larger than the room left is split: the rows that fit go in this batch and it stays at
    the head of the queue for the next. ``pending`` and each taken request's ``next_item`` advance.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be positive, not {max_items}")
    batch: list[Slice] = []
    dropped: list[Work] = []
    room = max_items
    while pending and room:
        work = pending[0]
        if work.abandoned or now >= work.deadline:
            dropped.append(pending.popleft())
            continue
        take = min(room, work.n_items - work.next_item)
        batch.append(Slice(work, work.next_item, work.next_item + take))
        work.next_item += take
        room -= take
        if work.next_item == work.n_items:
            pending.popleft()
    return batch, dropped


def fill_until(
    pending: deque[Work], queued_items: int, config: BatchConfig, now: float, arrivals: ArrivalRate
) -> float | None:
    """When the worker should stop waiting for the batch to fill (None: form it now): a full batch is
    formed at once, a partial one at most ``max_queue_delay_us`` after its oldest request, and at once
    too when fewer than ``EXPECTED_COMPANY`` other requests are expected within that wait."""
    if not pending or queued_items >= config.max_batch_size:
        return None
    window = config.max_queue_delay_us / 1e6
    until = pending[0].enqueued + window
    if now >= until or arrivals.expected_within(window) < EXPECTED_COMPANY:
        return None
    return until


class ArrivalRate:
    """How often requests arrive: an exponentially weighted mean of the gaps between arrivals. Each gap
    counts at most ``clip_windows`` fill windows, so that after an idle spell a burst is seen as one within
    a few requests; before any gap is seen, company is assumed (the configured wait)."""

    def __init__(self, window_s: float, weight: float = 0.2, clip_windows: float = 4.0) -> None:
        self.longest_gap = clip_windows * window_s
        self.weight = weight
        self.mean_gap = 0.0
        self.last: float | None = None

    def observe(self, now: float) -> None:
        if self.last is not None:
            self.mean_gap += self.weight * (min(now - self.last, self.longest_gap) - self.mean_gap)
        self.last = now

    def expected_within(self, seconds: float) -> float:
        """How many requests arrive in ``seconds`` at the recent rate (inf before any gap is seen)."""
        return seconds / self.mean_gap if self.mean_gap > 0.0 else math.inf


class ServiceRate:
    """How fast a batcher gets through its queue: items per second of its recent runs, smoothed
    (exponentially weighted sums of items and of seconds, so a full batch weighs as much as its size).
    Once there is an estimate, a run counts at most ``clip_runs`` times what the estimate expects of it,
    so that a pause of the process is not taken for the model's cost (``observe``)."""

    def __init__(self, weight: float = 0.2, clip_runs: float = 4.0) -> None:
        self.weight = weight
        self.clip_runs = clip_runs
        self.items = 0.0
        self.seconds = 0.0

    def observe(self, items: int, seconds: float) -> None:
        if self.seconds <= 0.0 or self.items <= 0.0:
            self.items, self.seconds = float(items), seconds
            return
        # A run is timed in elapsed (monotonic) time: a pause of the process while it ran (SIGSTOP, a VM pause,
        # a long GC, a cgroup throttle) is in its time but is not the model's cost. Taken whole, a 3 s pause put a 2 ms
        # run of 20 items at 600 ms, and with 200 items queued a request with 1 s left was refused as
        # overloaded for the next 10 runs (23 after a minute's pause). Clipped, a run of the mean size raises
        # the estimate by at most 60 % (weight 0.2 of 4 - 1), and a real slowdown still shows within a few
        # runs, as each clipped run raises it again (10x slower: 5 runs to 6x, against 4 unclipped). A run
        # smaller than the mean is held to the mean run's time, not its items' share of it: a small run's
        # fixed cost makes its time per item higher than the estimate's, which is no pause
        expected = max(items, self.items) * self.seconds / self.items
        seconds = min(seconds, self.clip_runs * expected)
        self.items += self.weight * (items - self.items)
        self.seconds += self.weight * (seconds - self.seconds)

    def expected_wait(self, queued_items: int, instances: int) -> float | None:
        """Seconds until ``queued_items`` are through, ``instances`` runs at once; None before any run."""
        if self.seconds <= 0.0 or self.items <= 0.0:
            return None
        return queued_items * self.seconds / self.items / instances


def admission(
    queued_items: int, n_items: int, now: float, deadline: float, config: BatchConfig, rate: ServiceRate
) -> tuple[str, str] | None:
    """Why a request of ``n_items`` cannot be queued now, as (reason, detail), or None: no room in the
    queue, or (Triton's queue policy, CoDel's idea) an expected wait (the items queued ahead of it and its
    own ÷ the measured service rate) that passes the request's remaining time, so it is refused at once,
    not at its deadline. With nothing queued a request is always admitted, so a rate measured under load
    cannot keep refusing once the load has gone (each run it makes updates the rate)."""
    if queued_items + n_items > config.max_queue_items:
        return "queue_full", "the model's queue is full"
    wait = rate.expected_wait(queued_items + n_items, config.instances) if queued_items else None
    if wait is not None and now + wait > deadline - (1 - ADMIT_WITHIN) * (deadline - now):
        left_ms = (deadline - now) * 1000  # under 10 ms to a tenth: "(0 ms)" read as a deadline already passed
        left = f"{left_ms:.1f}" if left_ms < 10 else f"{left_ms:.0f}"
        return "overloaded", f"the expected queue wait ({wait * 1000:.0f} ms) passes the deadline ({left} ms left)"
    return None


def concat_slices(batch: Sequence[Slice]) -> Tensors:
    """The default ``collate``: requests given as tensors, their rows concatenated in batch order."""
    first = batch[0]
    if len(batch) == 1 and first.start == 0 and first.stop == first.work.n_items:
        return dict(first.work.inputs)
    names = first.work.inputs.keys()
    return {name: np.concatenate([s.work.inputs[name][s.start : s.stop] for s in batch]) for name in names}


def split_outputs(batch: Sequence[Slice], outputs: Tensors) -> list[Tensors]:
    """Each slice's rows of a batch's outputs, in batch order."""
    parts = []
    offset = 0
    for s in batch:
        parts.append({name: value[offset : offset + s.size] for name, value in outputs.items()})
        offset += s.size
    return parts


def assemble(work: Work) -> Tensors:
    """A split request's outputs in row order."""
    if len(work.parts) == 1:
        return work.parts[0][1]
    parts = sorted(work.parts, key=lambda part: part[0])
    return {name: np.concatenate([p[name] for _, p in parts]) for name in parts[0][1]}
