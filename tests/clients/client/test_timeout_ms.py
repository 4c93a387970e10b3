"""A call's ``timeout_ms`` bounds the whole call in the typed client: each attempt tells the service what
is left of it as the request goes out (after any wait for a pooled connection), every phase gets only what
is left (plus a grace of min(50 ms, timeout_ms / 4)), a 503 is waited out only where its Retry-After fits
in what is left, and an answer still arriving past it is cut off; the client's own time-outs carry their
request and say which call and budget (stand-ins answer as an overloaded, a slow and a trickling service
would)."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from clients.client import AsyncScoringClient, ScoringClient, ServiceError
from tests.support.score_call import CANDIDATES, CONTEXT, SCORED, overloaded
from tests.support.stand_in import reply, stand_in


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
        # a wait drawn near its longest (1.45 s) leaves the second attempt 50 ms, which a loaded machine missed
        # (a TimeoutException): seed 1 draws a wait near 1.06 s
        client.random.seed(1)
        with pytest.raises(ServiceError):
            client.score(CONTEXT, CANDIDATES, timeout_ms=1500)
        (wait,) = client.waits
        assert 1.0 <= wait < 1.5 and len(received) == 2  # a second 1 s wait would not fit
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
        with ScoringClient(url) as client, pytest.raises(httpx.TimeoutException) as caught:
            client.score(CONTEXT, CANDIDATES, timeout_ms=300, request_id="ad-7")
        assert str(caught.value) == (
            "POST /v1/score (X-Request-ID ad-7): timeout_ms=300 passed while the answer was still arriving"
        )
        assert caught.value.request.url.path == "/v1/score"  # raised RuntimeError: a caller logging it crashed

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
        with pytest.raises(TypeError, match=r"^timeout_ms must be .* milliseconds, not str \(.100.\)$"):
            client.score(CONTEXT, CANDIDATES, timeout_ms="100")  # type: ignore[arg-type]
        assert not received


def test_a_20_ms_budget_gets_a_quarter_of_it_as_grace_and_no_phase_more_than_what_is_left() -> None:
    """A fixed 50 ms grace let a 20 ms call run to 70 ms; every phase's time-out is what is left then."""

    def stalled(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.3)

    with stand_in(stalled) as (url, received), ScoringClient(url) as client:
        with pytest.raises(httpx.TimeoutException) as caught:
            client.score(CONTEXT, CANDIDATES, timeout_ms=20)
        timeouts = caught.value.request.extensions["timeout"]
        assert max(timeouts.values()) <= 0.025
        (sent,) = budgets_sent(received)
        assert 0 < sent <= 20


def slow_then_quick(held_s: float):
    """A stand-in whose first answer takes ``held_s``, holding the client's only connection; and an event
    set when that first request has arrived."""
    arrived = threading.Event()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if not arrived.is_set():
            arrived.set()
            time.sleep(held_s)
        reply(handler, 200, SCORED)

    return answer, arrived


def test_the_service_is_told_what_is_left_after_the_wait_for_a_pooled_connection() -> None:
    """The header was written before the wait for a connection: the service was given time already spent."""
    answer, arrived = slow_then_quick(0.4)
    with stand_in(answer) as (url, received), ScoringClient(url, max_connections=1) as client:
        first = threading.Thread(target=client.score, args=(CONTEXT, CANDIDATES))
        first.start()
        assert arrived.wait(5)
        client.score(CONTEXT, CANDIDATES, timeout_ms=1000)
        first.join()
        (sent,) = budgets_sent(received[1:])
        assert sent <= 600  # at least the 400 ms the first call held the connection were spent waiting


def test_a_pool_timeout_says_which_call_waited_for_a_connection_and_how_long() -> None:
    """httpx's PoolTimeout came with an empty message and, from the client, waited timeout_ms + 50 ms."""
    answer, arrived = slow_then_quick(0.6)
    with stand_in(answer) as (url, _):
        for settings, budget, said in (
            ({}, {"timeout_ms": 100}, "timeout_ms=100"),
            ({"timeout_s": 0.1}, {}, "timeout_s=0.1"),
        ):
            arrived.clear()
            with ScoringClient(url, max_connections=1, **settings) as client:
                # its own timeout_ms: timeout_s=0.1 would have cut its read short and freed the connection
                first = threading.Thread(target=client.score, args=(CONTEXT, CANDIDATES, 2000))
                first.start()
                assert arrived.wait(5)
                with pytest.raises(httpx.PoolTimeout) as caught:
                    client.score(CONTEXT, CANDIDATES, **budget)
                first.join()
            assert str(caught.value).startswith(f"POST /v1/score: {said} passed waiting for a pooled connection")
            assert "max_connections=1" in str(caught.value) and caught.value.request.url.path == "/v1/score"
            if budget:
                assert caught.value.request.extensions["timeout"]["pool"] <= 0.1  # none of the grace


def test_a_read_past_timeout_s_says_which_call_waited_and_how_long() -> None:
    """Without timeout_ms, httpx's ReadTimeout said only "timed out" (the async client's nothing)."""

    def stalled(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.5)

    said = "POST /v1/score: timeout_s=0.1 (each phase's) passed waiting for the answer"
    with stand_in(stalled) as (url, _):
        with ScoringClient(url, timeout_s=0.1) as client, pytest.raises(httpx.ReadTimeout) as caught:
            client.score(CONTEXT, CANDIDATES)
        assert str(caught.value) == said and caught.value.request.url.path == "/v1/score"

        async def scored_async() -> None:
            async with AsyncScoringClient(url, timeout_s=0.1) as async_client:
                await async_client.score(CONTEXT, CANDIDATES)

        with pytest.raises(httpx.ReadTimeout) as caught:
            asyncio.run(scored_async())
        assert str(caught.value) == said


def test_a_timeout_ms_too_small_for_an_attempt_says_so_and_sends_nothing() -> None:
    with stand_in(overloaded) as (url, received), ScoringClient(url) as client:
        with pytest.raises(httpx.TimeoutException) as caught:
            client.score(CONTEXT, CANDIDATES, timeout_ms=0.5)
        assert str(caught.value) == "POST /v1/score: timeout_ms=0.5 leaves no time for an attempt (at least 1 ms)"
        assert caught.value.request.url.path == "/v1/score" and not received
