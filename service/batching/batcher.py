"""Dynamic batching (DESIGN.md §5): one batcher per served model version.

Requests wait in a bounded queue in front of one worker. The worker forms batches (policy.py) and
runs each off the event loop in a thread pool with ``instances`` batches at most in flight; a thread
that finishes a batch takes the next one due itself, under the queue's lock, so the model does not wait
for a busy event loop between batches (only the answers go back to the loop). A request
with more items than a batch holds is split across batches and its outputs are reassembled in order.
A full queue refuses at once (QueueFull -> 503 with Retry-After); a request past its deadline gets
DeadlineExceeded (504); a request whose caller is cancelled (client gone) is marked abandoned and
dropped when the next batch is formed, so it never takes a place in one. Every request gets exactly one
outcome: its future is set once, by whichever happens first.

Per request the batcher keeps to a few dict and list operations on the event loop: deadlines wait in
one heap behind one timer (armed for the earliest), not a timer per request (a timer costs more than
the rest of a request's queueing), and the loop is read once, at start.

The batcher does not know what a request's inputs are: the model supplies ``collate`` (the batch's
slices -> its input tensors, e.g. raw /v1/score rows encoded by one encoder call) and ``run``, as
LitServe's loop takes a model's ``batch`` and ``predict``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from service.batching.policy import (
    ArrivalRate,
    BatchConfig,
    ServiceRate,
    Slice,
    Tensors,
    Work,
    admission,
    assemble,
    concat_slices,
    fill_until,
    form_batch,
    split_outputs,
)
from service.http.errors import ApiError, DeadlineExceeded, InputError, ModelRunFailed, NonFiniteOutput, QueueFull
from service.metrics import ModelStats, run_output_sums

logger = logging.getLogger(__name__)

CHAINED = object()  # what the model's thread returns when its batches have been answered on the loop
RunFn = Callable[[Mapping[str, np.ndarray]], Tensors]
CollateFn = Callable[[Sequence[Slice]], Tensors]  # the batch's slices -> the model's input tensors


def non_finite_output(sums: Mapping[str, float]) -> str | None:
    """The first probability output whose run's sum (``run_output_sums``) is NaN or infinite, or None: one
    compare a run (the sums' sum is finite exactly when each value is), where checking each value cost ~1.5 µs
    an output. A run holding one is not answered as it is: orjson writes NaN as null, which a Go ad server
    decodes as 0 without a word (``NonFiniteOutput``; ``ctr score`` refuses such a row too)."""
    if math.isfinite(sum(sums.values())):
        return None
    return next(name for name, total in sums.items() if not math.isfinite(total))


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
        collate: CollateFn = concat_slices,
    ) -> None:
        self.run = run
        self.collate = collate
        self.config = config
        self.stats = stats if stats is not None else ModelStats()
        self.label = label
        self._pending: deque[Work] = deque()
        self._queued_items = 0  # rows in _pending not yet placed in a batch (abandoned ones included)
        # held while _pending and _queued_items change or a batch is formed: the model's thread takes its
        # next batch itself (``_run_chain``)
        self._queue_lock = threading.Lock()
        self._in_flight = 0  # requests enqueued and not yet settled
        self._wake: asyncio.Future | None = None  # the worker sleeps on it
        self._wake_at_items = 1  # queued items that end the worker's sleep early
        self._slots = asyncio.Semaphore(config.instances)
        self._executor: ThreadPoolExecutor | None = None
        self._worker: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._retired = False
        self.rate = ServiceRate()  # items per second of recent runs: the expected queue wait
        self.arrivals = ArrivalRate(config.max_queue_delay_us / 1e6)  # whether a batch can expect company
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop it was started on
        self._deadlines: list[tuple[float, int, Work]] = []  # a heap; settled requests leave it lazily
        self._order = itertools.count()  # ties between equal deadlines, in arrival order
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf  # when the timer fires (inf: not armed)

    @property
    def pending_requests(self) -> int:
        return self._in_flight

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.instances, thread_name_prefix=f"batch-{self.label}")
        if self.config.enabled and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.label}")
            self._worker.add_done_callback(self._worker_stopped)

    def _worker_stopped(self, task: asyncio.Task) -> None:
        """A worker that died of a bug: later requests run unbatched, and those it left queued are answered
        as a failed run (a 500 naming the model), where they waited out their deadline for a 504."""
        if task.cancelled() or task.exception() is None:
            return
        logger.error("batcher %s stopped: %r; requests now run unbatched", self.label, task.exception())
        with self._queue_lock:
            left, self._queued_items = list(self._pending), 0
            self._pending.clear()
        for work in left:
            self._settle(work, None, self._answered_failure(task.exception()))

    async def submit(self, inputs: Any, n_items: int, deadline: float) -> Tensors:
        """The model's outputs for ``n_items`` rows of ``inputs``; raises QueueFull or DeadlineExceeded."""
        work = self.enqueue(inputs, n_items, deadline)
        try:
            return await work.future  # type: ignore[misc]
        except asyncio.CancelledError:
            self.abandon(work)
            raise

    def admit(self, n_items: int, deadline: float) -> float:
        """The loop's time now, if a request of ``n_items`` can be queued; otherwise its refusal
        (DeadlineExceeded, or QueueFull: no room, or an expected wait past the deadline), counted in
        this model's stats; a 413 InputError when the queue could never hold it."""
        now = (self._loop or asyncio.get_running_loop()).time()
        if now >= deadline:  # the time went before the queue: reading, parsing, encoding the request
            self.stats.failure("deadline")
            late = f"{(now - deadline) * 1000.0:.1f} ms late when the request reached it"
            raise DeadlineExceeded(f"before model {self.label}'s queue: {late}")
        if self._unbatched:
            refusal = (
                ("queue_full", "the model's queue is full") if self._in_flight >= self.config.max_queue_items else None
            )
        elif n_items > self.config.max_queue_items:  # no room would ever be enough: a 503 to retry would mislead
            raise InputError(
                413,
                f"{n_items} rows; model {self.label} queues at most {self.config.max_queue_items} "
                "(its [serving] max_queue_items): send fewer per request",
            )
        else:
            refusal = admission(self._queued_items, n_items, now, deadline, self.config, self.rate)
        if refusal is not None:
            self.stats.failure(refusal[0])
            raise QueueFull(self.config.retry_after_s, *refusal)
        return now

    @property
    def _unbatched(self) -> bool:
        return self._worker is None or self._worker.done()  # batching off, or retired: runs of their own

    def enqueue(self, inputs: Any, n_items: int, deadline: float, admitted_at: float | None = None) -> Work:
        """Queue a request (or, unbatched, start its run); its refusal (``admit``) at once, unless the
        caller has just admitted it (``admitted_at``: the time ``admit`` returned, nothing queued since).

        Its outcome arrives on ``work.future``: the outputs, DeadlineExceeded at the deadline, or the
        batch's error. A caller that stops awaiting it must ``abandon`` it.
        """
        now = self.admit(n_items, deadline) if admitted_at is None else admitted_at
        loop = self._loop or asyncio.get_running_loop()
        work = Work(inputs, n_items, deadline, now, future=loop.create_future())
        if self._unbatched:
            self._run_alone_in_thread(work, loop)
        else:
            self.arrivals.observe(now)
            with self._queue_lock:
                self._pending.append(work)
                self._queued_items += n_items
            if self._queued_items >= self._wake_at_items:
                self._wake_worker()
        self._watch_deadline(work, loop)
        self._in_flight += 1
        return work

    def abandon(self, work: Work) -> None:
        """The caller no longer awaits this request: its rows not yet batched are dropped."""
        self._settle(work, None, None)

    def _watch_deadline(self, work: Work, loop: asyncio.AbstractEventLoop) -> None:
        """Queue the request's deadline; the timer is moved only for one earlier than it is armed for."""
        deadlines = self._deadlines
        if len(deadlines) > 2 * self._in_flight + 1024:  # mostly settled requests: drop them
            deadlines[:] = [entry for entry in deadlines if not entry[2].settled]
            heapq.heapify(deadlines)
        heapq.heappush(deadlines, (work.deadline, next(self._order), work))
        if work.deadline < self._timer_at:
            if self._deadline_timer is not None:
                self._deadline_timer.cancel()
            self._timer_at = work.deadline
            self._deadline_timer = loop.call_at(work.deadline, self._expire_due)

    def _expire_due(self) -> None:
        """DeadlineExceeded for every unsettled request whose deadline has come; the timer re-armed."""
        loop = self._loop or asyncio.get_running_loop()
        deadlines = self._deadlines
        now = max(loop.time(), self._timer_at)  # the loop's clock may read a little short of the timer's
        while deadlines and deadlines[0][0] <= now:
            work = heapq.heappop(deadlines)[2]
            if not work.settled:
                self._settle(work, None, self._expired(work, now))
        while deadlines and deadlines[0][2].settled:  # arm for the next request still waiting
            heapq.heappop(deadlines)
        self._timer_at = deadlines[0][0] if deadlines else math.inf
        self._deadline_timer = loop.call_at(self._timer_at, self._expire_due) if deadlines else None

    def _expired(self, work: Work, now: float) -> DeadlineExceeded:
        """A request's 504 at its deadline, saying whether it was still queued or its rows had reached a run
        (a request split across batches: some of them), and how long after it was queued."""
        queued_ms = (now - work.enqueued) * 1000.0
        if work.next_item == 0:
            return DeadlineExceeded(f"in model {self.label}'s queue, {queued_ms:.1f} ms after it was queued")
        return DeadlineExceeded(f"while model {self.label} ran it, {queued_ms:.1f} ms after it was queued")

    def _settle(self, work: Work, outputs: Tensors | None, error: BaseException | None) -> None:
        """Decide a request's outcome, once: outputs, an error, or (neither) abandoned by its caller."""
        if work.settled:
            return
        work.settled = True
        self._in_flight -= 1
        if not self._in_flight and self._deadline_timer is not None:  # nothing left to expire
            self._deadline_timer.cancel()
            self._deadline_timer, self._timer_at = None, math.inf
            self._deadlines.clear()
        future = work.future
        assert future is not None
        if outputs is not None:
            self.stats.success((self._loop or asyncio.get_running_loop()).time() - work.enqueued, work.waited)
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
        work.waited = max(0.0, time.monotonic() - work.enqueued)  # behind other runs for the thread pool
        started = time.perf_counter()
        outputs = self.run(self.collate([Slice(work, 0, work.n_items)]))
        return outputs, time.perf_counter() - started

    def _ran_alone(self, work: Work, done: Future) -> None:
        error = done.exception()
        ran = done.result() if error is None else None
        if ran is not None:
            outputs, ran_s = ran
            sums = run_output_sums(outputs)
            output = non_finite_output(sums)
            if output is None:
                self.stats.executed(work.n_items, ran_s, sums)
                self._settle(work, outputs, None)
                return
            error = NonFiniteOutput(self.label, output)  # every row is this request's own: nothing to tell apart
        if error is not None:
            logger.error("run of %d items alone on %s failed", work.n_items, self.label, exc_info=error)
            self._settle(work, None, self._answered_failure(error))

    def _refuse_non_finite(
        self, batch: Sequence[Slice], parts: Sequence[Tensors], run: str
    ) -> tuple[list[Slice], list[Tensors], dict[str, float]]:
        """For a run whose summed probabilities are not finite (``non_finite_output``): each slice's own rows
        checked, the requests among them holding a NaN or an infinity answered ``NonFiniteOutput`` (a 500; the run
        logged once, as ``run``), the other slices returned with their outputs and summed probabilities, to be
        answered as usual. One NaN-producing candidate answered 500 to every request batched with it; the
        slices' own sums are taken here only, so the success path keeps its one compare a run."""
        kept: list[Slice] = []
        kept_parts: list[Tensors] = []
        sums: dict[str, float] = {}
        refused: NonFiniteOutput | None = None
        for s, part in zip(batch, parts, strict=True):
            own = run_output_sums(part)
            output = non_finite_output(own)
            if output is None:
                kept.append(s)
                kept_parts.append(part)
                for name, total in own.items():
                    sums[name] = sums.get(name, 0.0) + total
            else:
                refused = NonFiniteOutput(self.label, output)
                self._settle(s.work, None, refused)
        logger.error("%s on %s failed", run, self.label, exc_info=refused)
        return kept, kept_parts, sums

    def _answered_failure(self, failure: BaseException | None) -> BaseException | None:
        """What a request of a failed run is answered: an ApiError as it is (it says what to answer), any
        other failure as ``ModelRunFailed`` (a 500 naming the model), its cause kept but not logged again."""
        if failure is None or isinstance(failure, ApiError):
            return failure
        answered = ModelRunFailed(self.label)
        answered.__cause__ = failure
        return answered

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
        while True:
            while not self._pending:
                if self._retired:
                    return
                await self._sleep(1)
            await self._slots.acquire()
            with self._queue_lock:
                fill_by = (
                    None
                    if self._retired
                    else fill_until(self._pending, self._queued_items, self.config, loop.time(), self.arrivals)
                )
            if fill_by is not None:
                await self._sleep(self.config.max_batch_size, fill_by)
            batch = self._take_batch(loop.time())
            if not batch:
                self._slots.release()
                continue
            task = loop.create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _take_batch(self, now: float, due_only: bool = False) -> list[Slice]:
        """On the loop: the next batch from the head of the queue (``_take``); the requests dropped on the
        way (abandoned, or past their deadline) are settled."""
        batch, dropped = self._take(now, due_only)
        self._settle_dropped(dropped, now)
        return batch

    def _settle_dropped(self, dropped: list[Work], now: float) -> None:
        for work in dropped:
            if not work.settled:  # (an abandoned one was settled when its caller left)
                self._settle(work, None, self._expired(work, now))

    def _take(self, now: float, due_only: bool, more_than: int = 0) -> tuple[list[Slice], list[Work]]:
        """The next batch (with ``due_only``, only if one is due: full, past its fill wait, or the batcher
        retiring; and only if more than ``more_than`` items are queued) and the requests dropped on the
        way, to be settled on the loop. Either thread."""
        with self._queue_lock:
            pending = self._pending
            if due_only and not (
                pending
                and self._queued_items > more_than
                and (self._retired or fill_until(pending, self._queued_items, self.config, now, self.arrivals) is None)
            ):
                return [], []
            batch, dropped = form_batch(pending, self.config.max_batch_size, now)
            self._queued_items -= sum(s.size for s in batch) + sum(w.n_items - w.next_item for w in dropped)
            for work in dropped:
                work.next_item = work.n_items
        return batch, dropped

    def _launch(self, batch: list[Slice], loop: asyncio.AbstractEventLoop) -> tuple[list[Slice], float, Any]:
        """The batch started: (batch, when, a future done when it has been answered). It is handed to the
        model's thread (``_run_chain``, which goes on with the batches due after it), unless it has at most
        ``inline_max_items`` items: then it runs here, on the event loop, and its future is done on return.
        (In the thread, a small run waits for the GIL behind the loop's work, and 17-row runs cost the
        thread ~3x their CPU alone, cause not isolated; docs/serving.md.)"""
        started = loop.time()
        if sum(s.size for s in batch) > self.config.inline_max_items:
            try:
                return batch, started, loop.run_in_executor(self._executor, self._run_chain, batch, started, loop)
            except Exception as error:  # no thread to be had (a memory limit): the batch fails, answered 500
                failed = loop.create_future()  # (raised out of _execute, the slot was never released: every
                failed.set_exception(error)  # later batch waited for it and the model answered 504 for good)
                return batch, started, failed
        future = loop.create_future()
        try:
            future.set_result(self._run_batch(batch))
        except Exception as error:
            future.set_exception(error)
        return batch, started, future

    async def _execute(self, batch: list[Slice]) -> None:
        """Run ``batch`` and answer its requests, then each batch due as one finishes. In the model's
        thread ``_run_chain`` takes them itself; on the loop (small batches), the next one is taken before
        the finished one's requests are answered. The slot is held until no batch is due."""
        loop = self._loop or asyncio.get_running_loop()
        running: tuple[list[Slice], float, Any] | None = self._launch(batch, loop)
        try:
            while running is not None:
                batch, started, future = running
                outputs, failure = None, None
                try:
                    outputs = await future
                except Exception as error:
                    failure = error
                now = loop.time()
                following = self._take_batch(now, due_only=True)
                running = self._launch(following, loop) if following else None
                if outputs is not CHAINED:
                    self._answer(batch, started, now, outputs, failure)
        finally:
            self._slots.release()

    def _run_chain(self, batch: list[Slice], started: float, loop: asyncio.AbstractEventLoop) -> object:
        """In the model's thread: run ``batch``, then every batch due when the last one finishes (and too
        large to run on the loop), taken here, so the model does not wait for the busy event loop between
        batches (docs/serving-log.md, "The model's thread takes its next batch"). Each batch is answered on
        the loop."""
        while True:
            outputs, failure = None, None
            try:
                outputs = self._run_batch(batch)
            except Exception as error:
                failure = error
            now = time.monotonic()  # asyncio's loop clock (uvloop's reads the same clock, in ms)
            # a batch small enough to run on the loop is left to it (``_execute`` takes it from there)
            following, dropped = self._take(now, due_only=True, more_than=self.config.inline_max_items)
            try:
                loop.call_soon_threadsafe(self._answer_chained, batch, started, now, outputs, failure, dropped)
            except RuntimeError:  # the loop has closed: nobody is waiting
                return CHAINED
            if not following:
                return CHAINED
            batch, started = following, now

    def _answer_chained(
        self,
        batch: list[Slice],
        started: float,
        now: float,
        outputs: Tensors | None,
        failure: Exception | None,
        dropped: list[Work],
    ) -> None:
        self._settle_dropped(dropped, now)
        self._answer(batch, started, now, outputs, failure)

    def _answer(
        self, batch: list[Slice], started: float, now: float, outputs: Tensors | None, failure: Exception | None
    ) -> None:
        size = sum(s.size for s in batch)
        if failure is not None or outputs is None:
            logger.error("batch of %d items on %s failed", size, self.label, exc_info=failure)
            for s in batch:
                self._settle(s.work, None, self._answered_failure(failure))
            return
        parts = split_outputs(batch, outputs)
        sums = run_output_sums(outputs)
        answered = size
        if non_finite_output(sums) is not None:  # the requests whose own rows are not finite fail, the others not
            batch, parts, sums = self._refuse_non_finite(batch, parts, f"batch of {size} items")
            answered = sum(s.size for s in batch)
        ran_s = now - started  # as the queue sees it: the hand-over to the thread counts for the first of a chain
        if answered:  # the rows answered: a refused request's are counted as its failure only, as a failed run's
            self.stats.executed(answered, ran_s, sums)
        self.rate.observe(size, ran_s)
        for s, part in zip(batch, parts, strict=True):
            work = s.work
            if s.start == 0:  # its first rows: its wait ends here (a later part of a split request's does not)
                work.waited = max(0.0, started - work.enqueued)
            work.parts.append((s.start, part))
            work.done_items += s.size
            if work.done_items == work.n_items and not work.settled:
                self._settle(work, assemble(work), None)

    def _run_batch(self, batch: list[Slice]) -> Tensors:
        return self.run(self.collate(batch))

    async def retire(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued and running, then stop; later requests run alone in the thread pool."""
        self._retired = True
        self._wake_worker()
        worker = self._worker
        if worker is not None and not (worker.done() and not worker.cancelled() and worker.exception() is not None):
            # (a worker dead of a bug was said, and its queue answered, when it died: nothing to drain)
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), timeout_s)
                if self._running:
                    await asyncio.wait(set(self._running), timeout=timeout_s)
            except TimeoutError:
                logger.warning("batcher %s did not drain in %.0f s; stopping it", self.label, timeout_s)
                self._worker.cancel()
