"""Refusals at the door in the log: one warning as they begin, then one every ``INTERVAL_S`` with how many
there were since, while they go on, and one line when an interval passes without any. Each refusal is a
canned 503 the protocol writes without a request object (http/overload.py); an access line for each
would flood the log at twice the capacity, and none at all left an operator reading logs blind to the
overload (the 503s had no line of any kind). The count of an interval is said when the interval ends,
not at the next refusal: an overload's last refusals were held back until the next overload, hours later
perhaps, and said as one count with it (http/line_budget.py: one line an interval)."""

from __future__ import annotations

import logging

from service.http.line_budget import CallLater, LineBudget

logger = logging.getLogger(__name__)

INTERVAL_S = 10.0


class ShedLog:
    def __init__(self, shed_wait_ms: float, call_later: CallLater | None = None) -> None:
        self.shed_wait_ms = shed_wait_ms
        self.budget = LineBudget(1, INTERVAL_S, self._interval_ended, call_later)

    def refused(self) -> None:
        if self.budget.take():
            self._say(1)

    def _say(self, refusals: int, next_line: bool = True) -> None:
        logger.warning(
            "overloaded: %d request(s) refused at the door with 503 since the last such line: requests waited "
            "over %g ms to be read (CTR_SHED_WAIT_MS)%s",
            refusals,
            self.shed_wait_ms,
            f"; the next line in {INTERVAL_S:g} s" if next_line else "",
        )

    def flush(self) -> None:
        """Say the refusals not yet said (at shutdown: the loop that would have said them is closed)."""
        held, _ = self.budget.flush()
        if held:
            self._say(held, next_line=False)

    def _interval_ended(self, held: int, _opened: float) -> None:
        if held:
            self.budget.take()  # this line is the next interval's
            self._say(held)
        else:
            logger.info("no request refused at the door in the last %g s", INTERVAL_S)
