"""Dropping a request's work when its client disconnects.

Uvicorn does not cancel a handler when the client goes away; it answers the handler's next
``receive()`` with ``http.disconnect``. ``DisconnectWatch`` waits for that message while the request
awaits its outcomes, but only once the request has taken longer than ``WATCH_AFTER_S``: a request
answered sooner costs one timer and nothing else (a task and a receive per request cost ~150 µs of
CPU on the benchmark machine), and a request answered in a couple of milliseconds has nothing worth
removing. When the client leaves first, ``on_gone`` runs (the caller abandons its queued work, so its
rows never take a place in a batch) and ``gone`` says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Receive

WATCH_AFTER_S = 0.002


class DisconnectWatch:
    """From ``WATCH_AFTER_S`` on until ``stop``, calls ``on_gone`` if the client disconnects."""

    __slots__ = ("_on_gone", "_receive", "_timer", "_waiting", "gone")

    def __init__(self, receive: Receive, on_gone: Callable[[], None]) -> None:
        self._receive = receive
        self._on_gone = on_gone
        self._waiting: asyncio.Future | None = None
        self.gone = False
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._watch)

    def _watch(self) -> None:
        self._timer = None
        self._waiting = asyncio.ensure_future(self._receive())
        self._waiting.add_done_callback(self._received)

    def _received(self, waiting: asyncio.Future) -> None:
        if waiting.cancelled() or waiting.exception() is not None:
            return
        if waiting.result()["type"] != "http.disconnect":  # not the message that matters: wait again
            self._watch()
            return
        self.gone = True
        self._on_gone()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._waiting is not None and not self._waiting.done():
            self._waiting.cancel()
