"""Dropping a request's work when its client disconnects.

Uvicorn does not cancel a handler when the client goes away; it answers the handler's next
``receive()`` with ``http.disconnect``. ``until_disconnected`` waits on the work and, beside it, on
that message: if the client leaves first, the work is cancelled (the batcher then drops the request's
rows before they take a place in a batch) and ClientDisconnected ends the handler quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from service.errors import ClientDisconnected

T = TypeVar("T")


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """The result of ``work`` (read after the body), or ClientDisconnected if the client leaves first."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:
            raise ClientDisconnected() from None
        raise
    finally:
        watcher.cancel()
