"""Retries of a 503 are spread and rationed: each waits a random time between the Retry-After and 1.5
times it, from the client's own Random, and a client's retries share one budget (gRPC's retry throttling:
10 tokens, a 503 takes one, a 200 gives a tenth back, retried while more than 5 are left), in any thread
or task. A stand-in answers as an overloaded service does, with a short Retry-After to keep tests fast."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from http.server import BaseHTTPRequestHandler

import orjson
import pytest

from clients.client import AsyncScoringClient, ScoringClient, ServiceError
from clients.client.retry_budget import RetryBudget
from tests.support.score_call import CANDIDATES, CONTEXT, OVERLOADED, SCORED
from tests.support.stand_in import reply, stand_in

RETRY_AFTER_S = 0.05


def briefly_overloaded(handler: BaseHTTPRequestHandler) -> None:
    reply(handler, 503, OVERLOADED, {"retry-after": str(RETRY_AFTER_S)})


def test_retries_wait_a_random_time_from_retry_after_to_half_as_long_again_from_the_client_s_own_random() -> None:
    """Each retry came exactly Retry-After later (six threads sharing a client retried within 5 ms of each
    other): a call's waits are now drawn from Retry-After to 1.5 times it, by the client's own seeded Random."""
    arrivals: list[float] = []

    def overloaded_at(handler: BaseHTTPRequestHandler) -> None:
        arrivals.append(time.monotonic())
        briefly_overloaded(handler)

    seeded_waits = []
    with stand_in(overloaded_at) as (url, _):
        for global_seed in (1, 2):
            random.seed(global_seed)  # the global generator's state changes nothing
            arrivals.clear()
            with ScoringClient(url, max_retries=3) as client:
                client.random.seed(7)
                with pytest.raises(ServiceError):
                    client.score(CONTEXT, CANDIDATES)
            waits = list(client.waits)
            assert len(waits) == 3 and len(set(waits)) == 3
            assert all(RETRY_AFTER_S <= wait <= 1.5 * RETRY_AFTER_S for wait in waits)
            gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
            assert len(gaps) == 3 and min(gaps) >= RETRY_AFTER_S  # never sooner than the service asked
            seeded_waits.append(waits)
    assert seeded_waits[0] == seeded_waits[1]


def test_a_client_s_retries_share_one_budget_that_answered_calls_refill() -> None:
    """A fresh client retries 4 times in a row of 503s (tokens 10 -> 6), then raises the next 503 at once;
    20 answered calls give 2 tokens back, enough for one more retry."""
    overloaded = [True]

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if overloaded[0]:
            briefly_overloaded(handler)
        else:
            reply(handler, 200, SCORED)

    with stand_in(answer) as (url, received), ScoringClient(url, max_retries=3) as client:
        with pytest.raises(ServiceError):
            client.score(CONTEXT, CANDIDATES)
        assert len(received) == 4 and client.retry_budget.tokens == 6  # max_retries still caps the call
        with pytest.raises(ServiceError) as caught:
            client.score(CONTEXT, CANDIDATES)
        assert len(received) == 5 and caught.value.status == 503 and client.retried == 3  # the budget is spent
        overloaded[0] = False
        for _ in range(20):
            client.score(CONTEXT, CANDIDATES)
        assert client.retry_budget.tokens == 7  # counted in thousandths: 20 times 0.1 is 2 exactly
        overloaded[0] = True
        received.clear()
        with pytest.raises(ServiceError):
            client.score(CONTEXT, CANDIDATES)
        assert len(received) == 2 and client.retry_budget.tokens == 5


def test_threads_and_tasks_sharing_a_client_share_its_retry_budget() -> None:
    """Six callers of an always-overloaded service sent 4 requests each (24); the budget allows 4 retries in
    all, whichever caller takes them (a call that reaches max_retries takes a token without retrying)."""
    with stand_in(briefly_overloaded) as (url, received):
        with ScoringClient(url, max_retries=3) as client:
            refused: list[int] = []

            def call() -> None:
                try:
                    client.score(CONTEXT, CANDIDATES)
                except ServiceError as error:
                    refused.append(error.status)

            threads = [threading.Thread(target=call) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert refused == [503] * 6 and 9 <= len(received) <= 10 and client.retried == len(received) - 6
        assert client.retry_budget.tokens == 10 - len(received)

        async def tasks() -> tuple[list[object], AsyncScoringClient]:
            async with AsyncScoringClient(url, max_retries=3) as client:
                calls = (client.score(CONTEXT, CANDIDATES) for _ in range(6))
                return await asyncio.gather(*calls, return_exceptions=True), client

        received.clear()
        outcomes, async_client = asyncio.run(tasks())
        assert all(isinstance(outcome, ServiceError) for outcome in outcomes) and 9 <= len(received) <= 10
        assert async_client.retry_budget.tokens == 10 - len(received)


def test_a_503_the_client_does_not_retry_takes_nothing_from_the_budget() -> None:
    """Ten "model not loaded" 503s (no Retry-After: never retried) emptied the bucket, and the next overload
    503 was raised at once; gRPC A6 counts the retryable status codes alone."""
    not_loaded = orjson.dumps({"error": "not ready: model 'esmm': loading", "field": None})
    answers = iter([*[lambda h: reply(h, 503, not_loaded)] * 10, briefly_overloaded, lambda h: reply(h, 200, SCORED)])

    with stand_in(lambda handler: next(answers)(handler)) as (url, received), ScoringClient(url) as client:
        for _ in range(10):
            with pytest.raises(ServiceError):
                client.score(CONTEXT, CANDIDATES)
        assert client.retry_budget.tokens == 10 and len(received) == 10
        client.score(CONTEXT, CANDIDATES)  # its overload 503 waited out, then answered
        assert client.retried == 1 and len(received) == 12


def test_a_dropped_connection_is_sent_once_more_in_each_attempt_a_503_began() -> None:
    """The one resend of a dropped connection is an attempt's: a call whose connection dropped (sent again), then
    got a 503 and waited it out, is sent once more when the next attempt's connection drops too."""
    script = iter(["drop", "overloaded", "drop", "scored"])

    def answer(handler: BaseHTTPRequestHandler) -> None:
        step = next(script)
        if step == "drop":  # no answer: the connection closed, as a service's idle close races the call
            handler.close_connection = True
        elif step == "overloaded":
            briefly_overloaded(handler)
        else:
            reply(handler, 200, SCORED)

    with stand_in(answer) as (url, received), ScoringClient(url, max_retries=1) as client:
        assert len(client.score(CONTEXT, CANDIDATES).scores) == len(CANDIDATES)
        assert (client.resent, client.retried, len(received)) == (2, 1, 4)


def test_answered_calls_fill_the_retry_budget_no_further_than_its_10_tokens() -> None:
    """A long run of answers leaves 10 tokens, not more: the run of 503s that follows is retried while more than 5
    are left, four times, as for a fresh client (a budget filled past 10 would let an overload be retried longer)."""
    budget = RetryBudget()
    for _ in range(50):
        budget.answered()
    assert budget.tokens == 10
    assert [budget.refused() for _ in range(5)] == [True, True, True, True, False]
