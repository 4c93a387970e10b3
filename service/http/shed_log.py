"""Refusals at the door in the log: one warning as they begin, then one every ``INTERVAL_S`` with how many
there were since, while they go on, and one line when an interval passes without any. Each refusal is a
canned 503 the protocol writes without a request object (http/overload.py); an access line for each
would flood the log at twice the capacity, and none at all left an operator reading logs blind to the
overload (the 503s had no line of any kind). The count of an interval is said when the interval ends,
not at the next refusal: an overload's last refusals were held back until the next overload, hours later
perhaps, and said as one count with it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

INTERVAL_S = 10.0

CallLater = Callable[[float, Callable[[], None]], Any]  # (delay_s, callback): the event loop's call_later


class ShedLog:
    def __init__(self, shed_wait_ms: float, call_later: CallLater | None = None) -> None:
        self.shed_wait_ms = shed_wait_ms
        self.call_later = call_later  # None: the running event loop's (refusals are counted on it)
        self.unsaid = 0  # refusals since the last line
        self.interval_open = False  # a line was said less than INTERVAL_S ago: the next one is scheduled

    def refused(self) -> None:
        self.unsaid += 1
        if not self.interval_open:
            self._say()

    def _say(self, next_line: bool = True) -> None:
        logger.warning(
            "overloaded: %d request(s) refused at the door with 503 since the last such line: requests waited "
            "over %g ms to be read (CTR_SHED_WAIT_MS)%s",
            self.unsaid,
            self.shed_wait_ms,
            f"; the next line in {INTERVAL_S:g} s" if next_line else "",
        )
        self.unsaid = 0
        if next_line:
            self.interval_open = True
            (self.call_later or asyncio.get_running_loop().call_later)(INTERVAL_S, self._interval_ended)

    def flush(self) -> None:
        """Say the refusals not yet said (at shutdown: the loop that would have said them is closed)."""
        if self.unsaid:
            self._say(next_line=False)

    def _interval_ended(self) -> None:
        self.interval_open = False
        if self.unsaid:
            self._say()
        else:
            logger.info("no request refused at the door in the last %g s", INTERVAL_S)
