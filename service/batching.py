"""Dynamic batching (DESIGN.md §5): one batcher per served model version.

Requests wait in a bounded queue in front of one worker. The worker forms a batch of at most
``max_batch_size`` **items** (candidates), waiting at most ``max_queue_delay_us`` after the oldest
queued request, and runs it off the event loop in a thread pool with ``instances`` batches at most in
flight. A request with more items than a batch holds is split across batches and its outputs are
reassembled in order. A full queue refuses at once (QueueFull -> 503 with Retry-After); a request past
its deadline gets DeadlineExceeded (504); a request whose caller is cancelled (client gone) is marked
abandoned and dropped when the next batch is formed, so it never takes a place in one. Every request
gets exactly one outcome: its future is set once, by whichever happens first.

``/v1/score`` requests join as raw ``FeatureRows`` and are encoded together with the rest of their
batch, by one encoder call (service/feature_rows.py); V2 requests join as tensors.

The batch-forming step is the plain function ``form_batch`` over the queue, tested without a server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from service.errors import DeadlineExceeded, QueueFull
from service.feature_rows import FeatureRows
from service.metrics import ModelStats

logger = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]
RunFn = Callable[[Mapping[str, np.ndarray]], Tensors]
EncodeFn = Callable[[Sequence[tuple[FeatureRows, int, int]]], Tensors]  # rows start:stop of each part


@dataclass(eq=False, slots=True)
class Work:
    """One request in the queue: ``n_items`` rows of inputs and when it must be answered by."""

    inputs: Tensors | FeatureRows  # encoded tensors, each (n_items, ...), or raw rows encoded with the batch
    n_items: int
    deadline: float  # monotonic seconds (the event loop's clock)
    enqueued: float
    next_item: int = 0  # first row not yet placed in a batch
    abandoned: bool = False  # the caller gave up (cancelled or timed out): drop what is not yet batched
    future: asyncio.Future | None = None  # its outcome; awaited by the caller
    parts: list[tuple[int, Tensors]] = field(default_factory=list)  # (first row, outputs) per finished slice
    done_items: int = 0
    settled: bool = False  # its outcome is decided (and counted in the stats), once
    timer: asyncio.TimerHandle | None = None  # its deadline


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


def gather_inputs(batch: list[Slice], encode: EncodeFn | None = None) -> Tensors:
    """The batch's input tensors: each request's rows, in batch order.

    Requests that came as raw ``FeatureRows`` (``/v1/score``) are encoded together, by one ``encode``
    call for the whole batch; requests that came as tensors (V2 infer) give their own rows.
    """
    raw = [(s.work.inputs, s.start, s.stop) for s in batch if not isinstance(s.work.inputs, dict)]
    if raw:
        if encode is None:
            raise TypeError("this batcher takes encoded tensors only")
        encoded = encode(raw)
        if len(raw) == len(batch):
            return encoded
    first = batch[0]
    if not raw and len(batch) == 1 and first.start == 0 and first.stop == first.work.n_items:
        return dict(first.work.inputs)  # type: ignore[arg-type]
    names = next(s.work.inputs.keys() for s in batch if isinstance(s.work.inputs, dict))
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in names}
    offset = 0
    for s in batch:
        tensors = s.work.inputs
        if isinstance(tensors, dict):
            for name in names:
                pieces[name].append(tensors[name][s.start : s.stop])
        else:
            for name in names:
                pieces[name].append(encoded[name][offset : offset + s.size])
            offset += s.size
    return {name: np.concatenate(parts) for name, parts in pieces.items()}


def assemble(work: Work) -> Tensors:
    """A split request's outputs in row order."""
    if len(work.parts) == 1:
        return work.parts[0][1]
    parts = sorted(work.parts, key=lambda part: part[0])
    return {name: np.concatenate([p[name] for _, p in parts]) for name in parts[0][1]}


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 1024  # items per run
    max_queue_delay_us: int = 500  # longest wait for a batch to fill after its oldest request
    max_queue_items: int = 16384  # queued items beyond this are refused with 503
    instances: int = 1  # batches run at once (concurrent runs of the thread-safe session)
    enabled: bool = True  # False: each request runs alone in the thread pool, no queue
    retry_after_s: int = 1  # told to clients refused by a full queue


class Batcher:
    """The queue and worker in front of one model version's ``run``.

    A request is ``enqueue``d (synchronously: refusals are raised at once) and its outcome awaited on
    ``work.future``; ``submit`` does both. A caller with work in two batchers (the two role models of a
    ``/v1/score`` request) enqueues in both before awaiting either, so both batches can form at once,
    and ``abandon``s what it no longer awaits. Every outcome (outputs, the batch's error, the deadline,
    abandonment) goes through ``_settle``, which decides it once and counts it once.
    """

    def __init__(
        self,
        run: RunFn,
        config: BatchConfig,
        stats: ModelStats | None = None,
        label: str = "",
        encode: EncodeFn | None = None,
    ) -> None:
        self.run = run
        self.encode = encode
        self.config = config
        self.stats = stats if stats is not None else ModelStats()
        self.label = label
        self._pending: deque[Work] = deque()
        self._queued_items = 0  # rows in _pending not yet placed in a batch (abandoned ones included)
        self._in_flight = 0  # requests enqueued and not yet settled
        self._wake: asyncio.Future | None = None  # the worker sleeps on it
        self._wake_at_items = 1  # queued items that end the worker's sleep early
        self._slots = asyncio.Semaphore(config.instances)
        self._executor: ThreadPoolExecutor | None = None
        self._worker: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._retired = False

    @property
    def pending_requests(self) -> int:
        return self._in_flight

    def start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.instances, thread_name_prefix=f"batch-{self.label}")
        if self.config.enabled and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.label}")
            self._worker.add_done_callback(self._worker_stopped)

    def _worker_stopped(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("batcher %s stopped: %r; requests now run unbatched", self.label, task.exception())

    async def submit(self, inputs: Tensors | FeatureRows, n_items: int, deadline: float) -> Tensors:
        """The model's outputs for ``n_items`` rows of ``inputs``; raises QueueFull or DeadlineExceeded."""
        work = self.enqueue(inputs, n_items, deadline)
        try:
            return await work.future  # type: ignore[misc]
        except asyncio.CancelledError:
            self.abandon(work)
            raise

    def enqueue(self, inputs: Tensors | FeatureRows, n_items: int, deadline: float) -> Work:
        """Queue a request (or, unbatched, start its run); QueueFull or DeadlineExceeded at once.

        Its outcome arrives on ``work.future``: the outputs, DeadlineExceeded at the deadline, or the
        batch's error. A caller that stops awaiting it must ``abandon`` it.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= deadline:
            self.stats.failure("deadline")
            raise DeadlineExceeded
        work = Work(inputs, n_items, deadline, now, future=loop.create_future())
        if self._worker is None or self._worker.done():  # unbatched, or retired: a run of its own
            if self._in_flight >= self.config.max_queue_items:
                self.stats.failure("queue_full")
                raise QueueFull(self.config.retry_after_s)
            self._run_alone_in_thread(work, loop)
        else:
            if self._queued_items + n_items > self.config.max_queue_items:
                self.stats.failure("queue_full")
                raise QueueFull(self.config.retry_after_s)
            self._pending.append(work)
            self._queued_items += n_items
            if self._queued_items >= self._wake_at_items:
                self._wake_worker()
        work.timer = loop.call_at(deadline, self._expire, work)
        self._in_flight += 1
        return work

    def abandon(self, work: Work) -> None:
        """The caller no longer awaits this request: its rows not yet batched are dropped."""
        self._settle(work, None, None)

    def _expire(self, work: Work) -> None:
        self._settle(work, None, DeadlineExceeded())

    def _settle(self, work: Work, outputs: Tensors | None, error: BaseException | None) -> None:
        """Decide a request's outcome, once: outputs, an error, or (neither) abandoned by its caller."""
        if work.settled:
            return
        work.settled = True
        self._in_flight -= 1
        if work.timer is not None:
            work.timer.cancel()
        future = work.future
        assert future is not None
        if outputs is not None:
            self.stats.success(asyncio.get_running_loop().time() - work.enqueued)
            if not future.done():
                future.set_result(outputs)
            return
        work.abandoned = True  # its rows not yet in a batch never take a place in one
        reason = "deadline" if isinstance(error, DeadlineExceeded) else "error" if error is not None else "cancelled"
        self.stats.failure(reason)
        if not future.done():
            if error is None:
                future.cancel()
            else:
                future.set_exception(error)

    def _run_alone_in_thread(self, work: Work, loop: asyncio.AbstractEventLoop) -> None:
        """Unbatched: one run for this request in the thread pool; its outcome is settled on the loop."""
        work.next_item = work.n_items
        assert self._executor is not None, "start() the batcher first"
        ran = self._executor.submit(self._run_alone, work)

        def back_on_the_loop(done: Future) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._ran_alone, work, done)

        ran.add_done_callback(back_on_the_loop)

    def _run_alone(self, work: Work) -> tuple[Tensors, float] | None:
        """In the thread: the request's run (none if it was abandoned meanwhile) and its duration."""
        if work.abandoned:
            return None
        started = time.perf_counter()
        outputs = self.run(gather_inputs([Slice(work, 0, work.n_items)], self.encode))
        return outputs, time.perf_counter() - started

    def _ran_alone(self, work: Work, done: Future) -> None:
        error = done.exception()
        ran = done.result() if error is None else None
        if ran is not None:
            self.stats.executed(work.n_items, 0.0, ran[1])
            self._settle(work, ran[0], None)
        elif error is not None:
            self._settle(work, None, error)

    def _wake_worker(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _sleep(self, wake_at_items: int, until: float | None = None) -> None:
        """Until ``wake_at_items`` items are queued, the loop's clock reaches ``until``, or retirement.

        One future per sleep, woken by ``enqueue`` only when the threshold is reached: a request that
        joins a filling batch costs no wake-up of the worker.
        """
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        self._wake_at_items = wake_at_items
        timer = loop.call_at(until, self._wake_worker) if until is not None else None
        try:
            await self._wake
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.config.max_queue_delay_us / 1e6
        while True:
            while not self._pending:
                if self._retired:
                    return
                await self._sleep(1)
            await self._slots.acquire()
            # Wait for the batch to fill, at most `delay` after the oldest queued request.
            if self._pending and not self._retired and self._queued_items < self.config.max_batch_size:
                fill_by = self._pending[0].enqueued + delay
                if loop.time() < fill_by:
                    await self._sleep(self.config.max_batch_size, fill_by)
            now = loop.time()
            batch, dropped = form_batch(self._pending, self.config.max_batch_size, now)
            self._queued_items -= sum(s.size for s in batch) + sum(w.n_items - w.next_item for w in dropped)
            for work in dropped:
                work.next_item = work.n_items
                self._settle(work, None, DeadlineExceeded())
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
                self._settle(s.work, None, error)
            return
        finally:
            self._slots.release()
        offset = 0
        for s in batch:
            work = s.work
            work.parts.append((s.start, {name: value[offset : offset + s.size] for name, value in outputs.items()}))
            work.done_items += s.size
            offset += s.size
            if work.done_items == work.n_items and not work.settled:
                self._settle(work, assemble(work), None)

    def _run_batch(self, batch: list[Slice]) -> Tensors:
        return self.run(gather_inputs(batch, self.encode))

    async def retire(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued and running, then stop; later requests run alone in the thread pool."""
        self._retired = True
        self._wake_worker()
        if self._worker is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), timeout_s)
                if self._running:
                    await asyncio.wait(set(self._running), timeout=timeout_s)
            except TimeoutError:
                logger.warning("batcher %s did not drain in %.0f s; stopping it", self.label, timeout_s)
                self._worker.cancel()
