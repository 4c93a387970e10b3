"""A request's side of the batchers: queue its work in each batcher it needs, then await the outcomes.

A ``/v1/score`` request needs both role models; when they are two models it queues in both batchers
before awaiting either, so both batches can form at once. Every batcher is asked first whether it can
take the work in time, so a refusal by one (QueueFull: 503) is counted on that model only and leaves
nothing queued in the others. If the client disconnects meanwhile, its work is abandoned (rows not
yet batched never run) and ClientDisconnected is raised.

A request's values clipped to a model's training range (common/encoder.py) are counted in
``ctr_feature_values_clipped_total`` here, once every batcher took the request, on every route that encodes
or clips before queueing (``/v1/score``'s large requests, ``/v1/similarity``, V2 infer): a request refused
after its encoding (a full queue's 503, a deadline gone by the queue's 504, more rows than a queue holds'
413) counts nothing. A small ``/v1/score`` request's rows are encoded, and counted, by its batch.

``live_batcher`` finds a model version's batcher first: a request may hold a snapshot whose version a
reload has since retired (its batcher draining), and is answered 503 rather than queued there.
``outcomes`` awaits them (a request answered by a task: ASGI); ``when_done`` calls back with them (a
request answered by its connection, without a task: http/protocol.py's direct routes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from service.batching.batcher import Batcher
from service.batching.policy import Tensors, Work
from service.http.disconnect import Watcher
from service.http.errors import ClientDisconnected, ModelUnavailable

if TYPE_CHECKING:
    from common.encoder import FeatureEncoder
    from service.models.base import ServedModel
    from service.models.snapshot import ServingModels

Queued = list[tuple[Hashable, Batcher, Work]]
# a request's clipped values not counted yet: encoder -> numeric feature -> rows its value was clipped in
Clipped = Mapping["FeatureEncoder", Mapping[str, int]]


def live_batcher(models: ServingModels, model: ServedModel) -> Batcher:
    """The batcher serving ``model`` in ``models``; 503 (ModelUnavailable) when the version is gone from it."""
    batcher = models.batchers.get(model)  # not models.batcher(): one call less on every request's path
    if batcher is None:
        raise ModelUnavailable(f"model {model.name!r} version {model.version} is no longer served")
    return batcher


def enqueue(
    requests: Sequence[tuple[Hashable, Batcher, Any]], n_items: int, deadline: float, clipped: Clipped | None = None
) -> Queued:
    """Each ``(key, batcher, inputs)`` queued, all before any is awaited; a refusal leaves none queued. Once
    all are queued, the request's ``clipped`` values are added to each encoder's count (``add_clipped``)."""
    # every refusal (counted on its own batcher's model) before anything is queued
    admitted_at = [batcher.admit(n_items, deadline) for _, batcher, _ in requests]
    queued: Queued = []
    try:
        for (key, batcher, inputs), now in zip(requests, admitted_at, strict=True):
            queued.append((key, batcher, batcher.enqueue(inputs, n_items, deadline, admitted_at=now)))
    except BaseException:
        abandon(queued)
        raise
    if clipped:
        for encoder, counts in clipped.items():
            if counts:  # a request's encoding that clipped nothing (the common case) takes no lock
                encoder.add_clipped(counts)
    return queued


async def outcomes(queued: Queued, watch_disconnect: Watcher) -> dict[Hashable, Tensors]:
    """Key -> outputs, once every queued run is done; ClientDisconnected if the client leaves first
    (``watch_disconnect``: http/disconnect.py's ``watcher``)."""
    watch = watch_disconnect(lambda: abandon(queued))
    results = {}
    try:
        for key, _, work in queued:
            results[key] = await work.future  # type: ignore[misc]
    except asyncio.CancelledError:
        abandon(queued)
        task = asyncio.current_task()
        if watch.gone and not (task is not None and task.cancelling()):  # not a cancellation of our own
            raise ClientDisconnected() from None
        raise
    except BaseException:
        abandon(queued)
        raise
    finally:
        watch.stop()
    return results


Done = Callable[[dict[Hashable, Tensors] | None, BaseException | None], None]


def when_done(queued: Queued, watch_disconnect: Watcher, done: Done) -> None:
    """``outcomes`` without awaiting: ``done(outputs, None)`` once every queued run is done, or
    ``done(None, error)`` at the first error (ClientDisconnected if the client left first; the rest of
    the work abandoned); called once, on the event loop."""
    results: dict[Hashable, Tensors] = {}
    state = {"pending": len(queued), "finished": False}

    def settled(key: Hashable, future: asyncio.Future) -> None:
        if state["finished"]:
            return
        if future.cancelled():  # abandoned: by the watch when the client left
            error: BaseException | None = ClientDisconnected() if watch.gone else RuntimeError("work cancelled")
        else:
            error = future.exception()
        if error is None:
            results[key] = future.result()
            state["pending"] -= 1
            if state["pending"]:
                return
        state["finished"] = True
        watch.stop()
        if error is not None:
            abandon(queued)
        done(None if error is not None else results, error)

    watch = watch_disconnect(lambda: abandon(queued))
    for key, _, work in queued:
        work.future.add_done_callback(partial(settled, key))  # type: ignore[union-attr]


def abandon(queued: Queued) -> None:
    for _, batcher, work in queued:
        batcher.abandon(work)  # a settled one is left as it is
