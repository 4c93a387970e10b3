"""Dropping a request's work when its client disconnects.

Uvicorn does not cancel a handler when the client goes away; it answers the handler's next
``receive()`` with ``http.disconnect``. Two ways to learn it while a request awaits its outcomes, both
giving an object whose ``gone`` says so and whose ``stop`` ends the watch; when the client leaves
first, ``on_gone`` runs (the caller abandons its queued work, so its rows never take a place in a batch):

- ``Departure``: under the service's own HTTP protocol (``ctr serve``; http/protocol.py), the connection
  puts one in each request's scope and tells it when it is lost. Watching costs an attribute.
- ``DisconnectWatch``: under any other server, a task waits for that message, but only once the request
  has taken longer than ``WATCH_AFTER_S``: a request answered sooner costs one timer and nothing else (a
  task and a receive per request cost ~150 µs of CPU on the benchmark machine), and a request answered
  in a couple of milliseconds has nothing worth removing. At saturation most requests take longer than
  that, and the tasks were 17-23% of the event loop's time for 100-candidate requests (docs/serving-log.md).

``watcher(scope, receive)`` picks the one the request has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Protocol

from starlette.types import Receive, Scope

DEPARTURE = "ctr.departure"  # scope key: the request's Departure, set by the connection (http/protocol.py)


class Watch(Protocol):
    gone: bool

    def stop(self) -> None: ...


Watcher = Callable[[Callable[[], None]], Watch]  # on_gone -> the watch


def watcher(scope: Scope, receive: Receive) -> Watcher:
    """How this request learns that its client left: its connection's ``Departure`` where it has one."""
    departure = scope.get(DEPARTURE)
    return departure.watch if departure is not None else partial(DisconnectWatch, receive)


class Departure:
    """Told by the connection when it is lost before the request's response is complete."""

    __slots__ = ("_on_gone", "gone")

    def __init__(self) -> None:
        self.gone = False
        self._on_gone: Callable[[], None] | None = None

    def watch(self, on_gone: Callable[[], None]) -> Departure:
        if self.gone:
            on_gone()
        else:
            self._on_gone = on_gone
        return self

    def leave(self) -> None:
        """The connection is lost."""
        self.gone = True
        on_gone, self._on_gone = self._on_gone, None
        if on_gone is not None:
            on_gone()

    def stop(self) -> None:
        self._on_gone = None


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
