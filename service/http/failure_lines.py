"""The access lines of failures while the access log is off (``CTR_ACCESS_LOG=false``, the setting at bid
volumes): a request answered with a status >= 500, one whose client left before its answer (499), and a
request the protocol refused (its own line: http/protocol.py) are still logged, the same lines with the
same fields, at most ``LINES_PER_S`` a second in each process (http/line_budget.py); the lines held back
are said as one count when their second ends. With the access log off a failed request had no line at
all: an SRE explaining a failed bid from the logs found nothing. Answers that succeed are not looked at
(the check is on the error paths alone: ``failed`` is called where an error is answered), and the door's
503s are counted by http/shed_log.py instead.

So are they under a log level above INFO with the access log on (``rationed_for``): uvicorn's per-request line
(INFO, raised to WARNING for a 5xx by the access filter) was dropped there before the filter saw it, and an
ASGI route's 5xx had no line at all. Otherwise (``rationed`` false) every line is written where it always was
(uvicorn's ``send``, the protocol's direct routes), unbounded, and ``failed`` does nothing.
"""

from __future__ import annotations

import logging

from common.utc_logging import utc_time
from service.http.disconnect import DEPARTURE
from service.http.line_budget import CallLater, LineBudget
from service.log_format import CLIENT_LEFT, FAILED, log_access_line
from service.settings import Settings

logger = logging.getLogger(__name__)

LINES_PER_S = 10


def rationed_for(settings: Settings) -> bool:
    """Whether the lines of failures alone are written, within the budget: with the access log off, or a log
    level above INFO."""
    level = logging.getLevelNamesMapping().get(settings.log_level, logging.INFO)
    return not settings.access_log or level > logging.INFO


class FailureLines:
    def __init__(self, rationed: bool = False, call_later: CallLater | None = None) -> None:
        self.rationed = rationed  # ``rationed_for`` the service's settings (app.py)
        self.budget = LineBudget(LINES_PER_S, 1.0, self._window_ended, call_later)

    def let_through(self) -> bool:
        """Whether a line the access log would have (a failure's, a refusal's) is said now: always while the
        access log is on, within the budget while it is off."""
        return not self.rationed or self.budget.take()

    def writes(self, status: int) -> bool:
        """Whether the line of an answer with ``status`` is said now: every one unless rationed, then a
        failure's (>= 500, and 499: the client left) within the budget."""
        return not self.rationed or ((status >= FAILED or status == CLIENT_LEFT) and self.budget.take())

    def failed(self, scope: dict, status: int) -> None:
        """An error answer of the request of ``scope`` on an ASGI route or a direct route: its access line
        while the access log is off, if it is a failure (>= 500) and its client is still there (one that
        left had its 499 line as it left: http/protocol.py)."""
        if not self.rationed or status < FAILED:
            return
        departure = scope.get(DEPARTURE)
        if (departure is None or not departure.gone) and self.budget.take():
            log_access_line(scope, status)

    def flush(self) -> None:
        """Say the lines held back in the last second (at shutdown: the loop that would have said them is closed)."""
        self._window_ended(*self.budget.flush())

    def _window_ended(self, held: int, opened: float) -> None:
        if held:
            logger.warning(
                "%d more access line(s) of failed or refused requests not written since %s: at most %d a second "
                "while the access log is off (CTR_ACCESS_LOG=false)",
                held,
                utc_time(opened),
                LINES_PER_S,
            )
