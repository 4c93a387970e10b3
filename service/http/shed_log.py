"""Refusals at the door in the log: one warning as they begin, then at most one every ``INTERVAL_S``
with how many there were since. Each refusal is a canned 503 the protocol writes without a request
object (http/overload.py); an access line for each would flood the log at twice the capacity, and none
at all left an operator reading logs blind to the overload (the 503s had no line of any kind)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

INTERVAL_S = 10.0


class ShedLog:
    def __init__(self, shed_wait_ms: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.shed_wait_ms = shed_wait_ms
        self.clock = clock
        self.unsaid = 0  # refusals since the last line
        self.next_line_at = -float("inf")

    def refused(self) -> None:
        self.unsaid += 1
        now = self.clock()
        if now < self.next_line_at:
            return
        logger.warning(
            "overloaded: %d request(s) refused at the door with 503 since the last such line: requests waited "
            "over %g ms to be read (CTR_SHED_WAIT_MS); the next line in %g s at the soonest",
            self.unsaid,
            self.shed_wait_ms,
            INTERVAL_S,
        )
        self.unsaid = 0
        self.next_line_at = now + INTERVAL_S
