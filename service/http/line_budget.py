"""A budget of log lines: at most ``lines`` a window of ``window_s``, and a count of those held back.

A log line per event floods the log when the events come in a storm (refusals at the door at twice the
capacity, a failing model's 500s, a client sending bad bytes in a loop), and no line at all leaves an
operator blind to them. So the first ``take`` of a quiet time opens a window; within it ``take`` lets
``lines`` through and counts the rest, and when the window ends its owner is told how many were held back
and since when (``on_window_end``), to say them in one line then, not at the next event, which may come
hours later. The next ``take`` opens a new window. http/shed_log.py (one line per 10 s) and
http/failure_lines.py (ten a second) say their lines with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

CallLater = Callable[[float, Callable[[], None]], Any]  # (delay_s, callback): the event loop's call_later
WindowEnd = Callable[[int, float], None]  # (lines held back, when the window opened: time.time())


class LineBudget:
    def __init__(self, lines: int, window_s: float, on_window_end: WindowEnd, call_later: CallLater | None = None):
        self.lines = lines
        self.window_s = window_s
        self.on_window_end = on_window_end
        self.call_later = call_later  # None: the running event loop's (the lines are said on it)
        self.left = 0  # lines the open window still lets through
        self.held = 0  # lines it held back
        self.opened: float | None = None  # when the open window began (time.time()); None: no window is open

    def take(self) -> bool:
        """Whether a line may be said now; False counts it as held back."""
        if self.opened is None:
            self.opened, self.left = time.time(), self.lines
            (self.call_later or asyncio.get_running_loop().call_later)(self.window_s, self._window_ended)
        if self.left:
            self.left -= 1
            return True
        self.held += 1
        return False

    def flush(self) -> tuple[int, float]:
        """The lines held back in the open window and when it opened, forgotten here (at shutdown: the loop
        that would have ended the window is closed)."""
        held, opened = self.held, self.opened if self.opened is not None else time.time()
        self.held = 0
        return held, opened

    def _window_ended(self) -> None:
        held, opened = self.held, self.opened
        self.held, self.opened = 0, None
        self.on_window_end(held, opened)  # type: ignore[arg-type]
