"""Dynamic batching (DESIGN.md §5): one batcher per served model version.

Requests wait in a bounded queue in front of one worker. The worker forms a batch of at most
``max_batch_size`` **items** (candidates), waiting at most ``max_queue_delay_us`` after the oldest
queued request, and runs it off the event loop in a thread pool with ``instances`` batches at most in
flight. A request with more items than a batch holds is split across batches and its outputs are
reassembled in order. A full queue refuses at once (QueueFull -> 503 with Retry-After); a request past
its deadline gets DeadlineExceeded (504); a request whose caller is cancelled (client gone) is marked
abandoned and dropped when the next batch is formed, so it never takes a place in one. Every request
gets exactly one outcome: its future is set once, by whichever happens first.

The batch-forming step is the plain function ``form_batch`` over the queue, tested without a server.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.errors import DeadlineExceeded, QueueFull
from service.metrics import ModelStats

logger = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]
RunFn = Callable[[Mapping[str, np.ndarray]], Tensors]


@dataclass(eq=False)
class Work:
    """One request in the queue: ``n_items`` rows of encoded inputs and when it must be answered by."""

    inputs: Mapping[str, np.ndarray]  # each (n_items, ...)
    n_items: int
    deadline: float  # monotonic seconds (the event loop's clock)
    enqueued: float
    next_item: int = 0  # first row not yet placed in a batch
    abandoned: bool = False  # the caller gave up (cancelled or timed out): drop what is not yet batched
    future: asyncio.Future | None = None
    parts: list[tuple[int, Tensors]] = field(default_factory=list)  # (first row, outputs) per finished slice
    done_items: int = 0


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


def gather_inputs(batch: list[Slice]) -> Tensors:
    """The batch's input tensors: each request's rows, concatenated in batch order."""
    first = batch[0]
    if len(batch) == 1 and first.start == 0 and first.stop == first.work.n_items:
        return dict(first.work.inputs)
    names = first.work.inputs.keys()
    return {name: np.concatenate([s.work.inputs[name][s.start : s.stop] for s in batch]) for name in names}


def assemble(work: Work) -> Tensors:
    """A split request's outputs in row order."""
    if len(work.parts) == 1:
        return work.parts[0][1]
    parts = sorted(work.parts, key=lambda part: part[0])
    return {name: np.concatenate([p[name] for _, p in parts]) for name in parts[0][1]}


def _fail(work: Work, error: Exception) -> None:
    """Fail a request's future once; an abandoned one (nobody awaits it) is cancelled, not failed, so
    asyncio has no unretrieved exception to report."""
    if work.future is None or work.future.done():
        return
    if work.abandoned:
        work.future.cancel()
    else:
        work.future.set_exception(error)


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 1024  # items per run
    max_queue_delay_us: int = 500  # longest wait for a batch to fill after its oldest request
    max_queue_items: int = 16384  # queued items beyond this are refused with 503
    instances: int = 1  # batches run at once (concurrent runs of the thread-safe session)
    enabled: bool = True  # False: each request runs alone in the thread pool, no queue
    retry_after_s: int = 1  # told to clients refused by a full queue


class Batcher:
    """The queue and worker in front of one model version's ``run``."""

    def __init__(self, run: RunFn, config: BatchConfig, stats: ModelStats | None = None, label: str = "") -> None:
        self.run = run
        self.config = config
        self.stats = stats if stats is not None else ModelStats()
        self.label = label
        self._pending: deque[Work] = deque()
        self._queued_items = 0  # rows in _pending not yet placed in a batch (abandoned ones included)
        self._in_flight = 0  # requests submitted and not yet answered
        self._arrival = asyncio.Event()
        self._slots = asyncio.Semaphore(config.instances)
        self._executor: ThreadPoolExecutor | None = None
        self._worker: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._retired = False

    @property
    def pending_requests(self) -> int:
        return self._in_flight

    def start(self) -> None:
        if self.config.enabled and self._worker is None:
            self._executor = ThreadPoolExecutor(self.config.instances, thread_name_prefix=f"batch-{self.label}")
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.label}")
            self._worker.add_done_callback(self._worker_stopped)

    def _worker_stopped(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("batcher %s stopped: %r; requests now run unbatched", self.label, task.exception())

    async def submit(self, inputs: Mapping[str, np.ndarray], n_items: int, deadline: float) -> Tensors:
        """The model's outputs for ``n_items`` rows of ``inputs``; raises QueueFull or DeadlineExceeded."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= deadline:
            self.stats.failure("deadline")
            raise DeadlineExceeded
        if self._worker is None or self._worker.done():
            return await self._run_alone(inputs, n_items, deadline)
        if self._queued_items + n_items > self.config.max_queue_items:
            self.stats.failure("queue_full")
            raise QueueFull(self.config.retry_after_s)
        work = Work(inputs, n_items, deadline, now, future=loop.create_future())
        self._pending.append(work)
        self._queued_items += n_items
        self._arrival.set()
        with self._outcome(work):
            async with asyncio.timeout_at(deadline):
                outputs = await asyncio.shield(work.future)
        self.stats.success(loop.time() - now)
        return outputs

    async def _run_alone(self, inputs: Mapping[str, np.ndarray], n_items: int, deadline: float) -> Tensors:
        """Unbatched (or retired batcher): one run for this request in the thread pool, still bounded."""
        if self._in_flight >= self.config.max_queue_items:
            self.stats.failure("queue_full")
            raise QueueFull(self.config.retry_after_s)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with self._outcome(None):
            async with asyncio.timeout_at(deadline):
                outputs = await run_in_threadpool(self.run, inputs)
        finished = loop.time()
        self.stats.executed(n_items, 0.0, finished - started)
        self.stats.success(finished - started)
        return outputs

    @contextmanager
    def _outcome(self, work: Work | None) -> Iterator[None]:
        """Count the request in flight; on failure count its reason and abandon its queued rows."""
        self._in_flight += 1
        try:
            yield
        except (TimeoutError, DeadlineExceeded):  # our timer, or the worker dropping it at its deadline
            self._abandon(work, "deadline")
            raise DeadlineExceeded from None
        except asyncio.CancelledError:
            self._abandon(work, "cancelled")
            raise
        except Exception:
            self._abandon(work, "error")
            raise
        finally:
            self._in_flight -= 1

    def _abandon(self, work: Work | None, reason: str) -> None:
        if work is not None:
            work.abandoned = True
        self.stats.failure(reason)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.config.max_queue_delay_us / 1e6
        while True:
            while not self._pending:
                if self._retired:
                    return
                self._arrival.clear()
                await self._arrival.wait()
            await self._slots.acquire()
            # Wait for the batch to fill, at most `delay` after the oldest queued request.
            fill_by = self._pending[0].enqueued + delay if self._pending else loop.time()
            while self._queued_items < self.config.max_batch_size and loop.time() < fill_by and not self._retired:
                self._arrival.clear()
                try:
                    async with asyncio.timeout_at(fill_by):
                        await self._arrival.wait()
                except TimeoutError:
                    break
            now = loop.time()
            batch, dropped = form_batch(self._pending, self.config.max_batch_size, now)
            self._queued_items -= sum(s.size for s in batch) + sum(w.n_items - w.next_item for w in dropped)
            for work in dropped:
                work.next_item = work.n_items
                _fail(work, DeadlineExceeded())
            if not batch:
                self._slots.release()
                continue
            task = loop.create_task(self._execute(batch, now))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _execute(self, batch: list[Slice], formed: float) -> None:
        loop = asyncio.get_running_loop()
        size = sum(s.size for s in batch)
        queue_s = sum(formed - s.work.enqueued for s in batch) / len(batch)
        try:
            started = loop.time()
            outputs = await loop.run_in_executor(self._executor, self._run_batch, batch)
            self.stats.executed(size, queue_s, loop.time() - started)
        except Exception as error:
            logger.exception("batch of %d items on %s failed", size, self.label)
            for s in batch:
                _fail(s.work, error)
            return
        finally:
            self._slots.release()
        offset = 0
        for s in batch:
            work = s.work
            work.parts.append((s.start, {name: value[offset : offset + s.size] for name, value in outputs.items()}))
            work.done_items += s.size
            offset += s.size
            if work.done_items == work.n_items and work.future is not None and not work.future.done():
                work.future.set_result(assemble(work))

    def _run_batch(self, batch: list[Slice]) -> Tensors:
        return self.run(gather_inputs(batch))

    async def retire(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued and running, then stop; later submits run alone in the thread pool."""
        self._retired = True
        self._arrival.set()
        if self._worker is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), timeout_s)
                if self._running:
                    await asyncio.wait(set(self._running), timeout=timeout_s)
            except TimeoutError:
                logger.warning("batcher %s did not drain in %.0f s; stopping it", self.label, timeout_s)
                self._worker.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
