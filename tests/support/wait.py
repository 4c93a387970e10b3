"""Waiting for something a test can observe, rather than sleeping for as long as it usually takes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(condition: Callable[[], T], timeout_s: float, what: str | Callable[[], str], every_s: float = 0.05) -> T:
    """``condition()``'s first truthy value, polled every ``every_s`` seconds; an AssertionError naming
    ``what`` (a callable: evaluated then, e.g. a log's tail) once ``timeout_s`` have passed without one.

    A condition that knows the wait is hopeless (the server exited) fails at once by raising itself. The
    deadline is a bound on a failing test's time, not a claim about speed: make it generous."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what() if callable(what) else what}")
        time.sleep(every_s)


def observe_polls(client: Any, polls: int) -> None:
    """Return once ``polls`` further polls of every model have finished in the app of ``client`` (a TestClient):
    ``ModelManager.polls_done``, where a sleep of as many intervals stood in for them."""
    manager = client.app.state.manager
    wanted = manager.polls_done + polls + 1  # the poll under way may have read the disk already
    eventually(lambda: manager.polls_done >= wanted, 10, f"{polls} polls")
