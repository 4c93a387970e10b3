"""With the access log off, the lines of failures (>= 500, 499) and refusals are still written, at most
``LINES_PER_S`` a second, and those held back are counted in one line when their second ends."""

from __future__ import annotations

import logging

import pytest

from service.http.disconnect import DEPARTURE, Departure
from service.http.failure_lines import LINES_PER_S, FailureLines
from service.log_format import ACCESS_LOGGER
from tests.support.scheduled import Scheduled


def scope(departure: Departure | None = None) -> dict:
    return {
        "client": ("10.0.0.1", 5000),
        "method": "POST",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "query_string": b"",
        "root_path": "",
        "http_version": "1.1",
        DEPARTURE: departure or Departure(),
    }


def access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == ACCESS_LOGGER]


def test_a_storm_of_failures_is_ten_lines_a_second_and_a_count(caplog: pytest.LogCaptureFixture) -> None:
    scheduled = Scheduled(1.0)
    lines = FailureLines(rationed=True, call_later=scheduled)
    with caplog.at_level(logging.INFO):
        for _ in range(25):
            lines.failed(scope(), 503)
        assert len(access(caplog)) == LINES_PER_S and all(
            record.levelno == logging.WARNING for record in access(caplog)
        )
        assert 'POST /v1/score HTTP/1.1" 503' in access(caplog)[0].getMessage()
        scheduled.run_next()  # the second ends: the 15 held back are said now
        assert caplog.records[-1].getMessage().startswith("15 more access line(s) of failed or refused requests")
        lines.failed(scope(), 500)  # a new second
        assert len(access(caplog)) == LINES_PER_S + 1
        scheduled.run_next()  # a second with nothing held back says nothing
        assert len(caplog.records) == LINES_PER_S + 2 and not scheduled.waiting


def test_answers_that_are_no_failure_and_clients_gone_write_nothing(caplog: pytest.LogCaptureFixture) -> None:
    lines = FailureLines(call_later=Scheduled(1.0))
    with caplog.at_level(logging.INFO):
        lines.failed(scope(), 500)  # the access log is on: uvicorn and the protocol write every line
        lines.rationed = True
        lines.failed(scope(), 404)  # a client's mistake
        gone = Departure()
        gone.leave()
        lines.failed(scope(gone), 504)  # its line was its 499, written as it left (http/protocol.py)
    assert caplog.records == []


def test_the_lines_held_back_in_the_last_second_are_said_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    lines = FailureLines(rationed=True, call_later=Scheduled(1.0))
    with caplog.at_level(logging.INFO):
        for _ in range(LINES_PER_S + 3):
            lines.failed(scope(), 500)
        lines.flush()
        assert caplog.records[-1].getMessage().startswith("3 more ")
        lines.flush()
        assert len(caplog.records) == LINES_PER_S + 1
