"""Dropping a request's work when its client disconnects.

Uvicorn does not cancel a handler when the client goes away; it answers the handler's next
``receive()`` with ``http.disconnect``. ``until_disconnected`` waits on the work and, once the work
has taken longer than ``WATCH_AFTER_S``, also on that message: if the client leaves first, the work
is cancelled (the batcher then drops the request's rows before they take a place in a batch) and
ClientDisconnected ends the handler quietly. Requests answered sooner never start the watcher (a task
and a receive per request cost ~150 µs of CPU on the benchmark machine), and a request answered in a
couple of milliseconds has nothing worth removing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from service.errors import ClientDisconnected

T = TypeVar("T")
WATCH_AFTER_S = 0.002


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """The result of ``work`` (read after the body), or ClientDisconnected if the client leaves first."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    gone = False
    watcher: asyncio.Task | None = None

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(WATCH_AFTER_S, start_watching)
    try:
        return await work
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:
            raise ClientDisconnected() from None
        raise
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
