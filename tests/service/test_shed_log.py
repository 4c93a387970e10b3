"""The overload's log lines: at once as refusals begin, each interval's count when the interval ends
(not at the next refusal, which may come hours later), and a line when they stop."""

from __future__ import annotations

import logging

import pytest

from service.http.shed_log import INTERVAL_S, ShedLog
from tests.support.scheduled import Scheduled


def test_a_burst_is_said_at_once_then_counted_when_its_interval_ends(caplog: pytest.LogCaptureFixture) -> None:
    scheduled = Scheduled()
    log = ShedLog(shed_wait_ms=50, call_later=scheduled)
    with caplog.at_level(logging.INFO, logger="service.http.shed_log"):
        for _ in range(5000):
            log.refused()
        assert len(caplog.records) == 1 and "overloaded: 1 request(s) refused" in caplog.records[0].getMessage()
        scheduled.run_next()  # the interval ends: its 4,999 are said now, not at the next refusal
        assert "4999 request(s) refused" in caplog.records[-1].getMessage()
        scheduled.run_next()  # a quiet interval: the overload is over
        assert caplog.records[-1].getMessage() == f"no request refused at the door in the last {INTERVAL_S:g} s"
        assert not scheduled.waiting
        log.refused()  # the next overload is said at once
        assert "1 request(s) refused" in caplog.records[-1].getMessage() and len(caplog.records) == 4


def test_the_refusals_of_the_last_interval_are_said_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    log = ShedLog(shed_wait_ms=50, call_later=Scheduled())
    with caplog.at_level(logging.INFO, logger="service.http.shed_log"):
        for _ in range(3):
            log.refused()
        log.flush()  # the loop is gone: its scheduled line never comes
        assert "overloaded: 2 request(s) refused" in caplog.records[-1].getMessage()
        log.flush()
        assert len(caplog.records) == 2
