"""A call's ``timeout_ms`` bounds the whole call in the typed client: each attempt tells the service what
is left of it, a 503 is waited out only where its Retry-After fits in what is left, and an answer still
arriving past it is cut off (stand-ins answer as an overloaded and a trickling service would)."""

from __future__ import annotations

import asyncio
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from clients.client import AsyncScoringClient, ScoringClient, ServiceError
from tests.clients.test_client import CANDIDATES, CONTEXT, overloaded
from tests.support.stand_in import stand_in


def budgets_sent(received: list[dict[str, str]]) -> list[float]:
    return [float(headers["x-request-timeout-ms"]) for headers in received]


def test_a_503_whose_retry_after_outlasts_timeout_ms_is_raised_without_waiting() -> None:
    with stand_in(overloaded) as (url, received), ScoringClient(url, max_retries=3) as client:
        with pytest.raises(ServiceError) as caught:
            client.score(CONTEXT, CANDIDATES, timeout_ms=300)
        assert caught.value.status == 503 and caught.value.retry_after_s == 1.0
        assert not client.waits and len(received) == 1  # the 1 s wait would outlast the 300 ms
        (sent,) = budgets_sent(received)
        assert 0 < sent <= 300


def test_a_503_is_waited_out_within_timeout_ms_and_each_attempt_is_told_what_is_left() -> None:
    with stand_in(overloaded) as (url, received), ScoringClient(url, max_retries=3) as client:
        with pytest.raises(ServiceError):
            client.score(CONTEXT, CANDIDATES, timeout_ms=1500)
        assert list(client.waits) == [1.0] and len(received) == 2  # a second 1 s wait would not fit
        first, second = budgets_sent(received)
        assert first <= 1500 and second <= 500  # the second attempt is told what is left after the wait


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """A 200 whose 100-byte body comes a byte every 50 ms (5 s in all)."""
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", "100")
    handler.end_headers()
    try:
        for _ in range(100):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass  # the client gave up


def test_an_answer_still_arriving_when_timeout_ms_passes_is_cut_off() -> None:
    with stand_in(trickle) as (url, _):
        with ScoringClient(url) as client, pytest.raises(httpx.TimeoutException):
            client.score(CONTEXT, CANDIDATES, timeout_ms=300)

        async def trickled() -> None:
            async with AsyncScoringClient(url) as client:
                await client.score(CONTEXT, CANDIDATES, timeout_ms=300)

        with pytest.raises(httpx.TimeoutException):
            asyncio.run(trickled())


def test_a_timeout_ms_that_is_no_positive_number_is_refused_before_anything_is_sent() -> None:
    with stand_in(overloaded) as (url, received), ScoringClient(url) as client:
        for bad in (0, -5, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="timeout_ms must be a positive number"):
                client.score(CONTEXT, CANDIDATES, timeout_ms=bad)
        assert not received
