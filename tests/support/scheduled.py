"""A stand-in for the loop's ``call_later``, for the tests of what the service does when a delay has passed
(the overload's log lines): no clock, the test says when the time has come."""

from __future__ import annotations

from collections.abc import Callable

from service.http.shed_log import INTERVAL_S


class Scheduled:
    """call_later's stand-in: the callbacks in order, run when the test says the time has come."""

    def __init__(self, delay_s: float = INTERVAL_S) -> None:
        self.delay_s = delay_s  # the only delay asked for
        self.waiting: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay_s: float, callback: Callable[[], None]) -> None:
        self.waiting.append((delay_s, callback))

    def run_next(self) -> None:
        delay_s, callback = self.waiting.pop(0)
        assert delay_s == self.delay_s
        callback()
