"""A call may send a request id (``X-Request-ID``), which the service echoes on its answer: ``ServiceError``
carries the answer's, and one the service would not take (it gives the request an id of its own) is a
ValueError before anything is sent, by the service's own rule (service/http/request_head.py)."""

from __future__ import annotations

import asyncio
import copy
import pickle
from http.server import BaseHTTPRequestHandler

import pytest

from clients.client import AsyncScoringClient, ScoringClient, ServiceError
from clients.client.headers import checked_request_id
from service.http.request_head import acceptable_request_id
from tests.support.access_log import given_id
from tests.support.score_call import CANDIDATES, CONTEXT, OVERLOADED
from tests.support.stand_in import reply, stand_in

REFUSED = ["", " ", "ad 42", "ad\t42", "x" * 201, "é", "ad\x7f", "ad\n42"]
TAKEN = ["a", "ad-42", "x" * 200, "!~#{}[]<>=;:/\\\"'", "0"]


def echoing_overload(handler: BaseHTTPRequestHandler) -> None:
    """A 503 at the door, which the service answers with the request's X-Request-ID."""
    reply(handler, 503, OVERLOADED, {"x-request-id": handler.headers.get("x-request-id", "")})


def test_a_request_id_is_sent_and_the_services_errors_carry_it_back(url: str) -> None:
    with ScoringClient(url) as client:
        assert len(client.score(CONTEXT, CANDIDATES, request_id="ad-42").scores) == len(CANDIDATES)
        bad = [{"ad_id": "a", "ad_price": "cheap"}]
        with pytest.raises(ServiceError) as caught:
            client.score(CONTEXT, bad, 500, request_id="auction-7/slot-1")
        error = caught.value
        assert (error.status, error.request_id) == (422, "auction-7/slot-1")
        assert str(error).endswith("(X-Request-ID auction-7/slot-1)")
        with pytest.raises(ServiceError) as unnamed:
            client.score(CONTEXT, bad)
        given = unnamed.value.request_id  # the one the service gave a request that carried none
        assert given_id(given) and str(unnamed.value).endswith(f"(X-Request-ID {given})")
    for copied in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert (copied.request_id, str(copied)) == (error.request_id, str(error))


def test_every_call_that_scores_sends_it_in_both_clients() -> None:
    with stand_in(echoing_overload) as (stand_in_url, received):
        with ScoringClient(stand_in_url, max_retries=0) as client:
            for call in (
                lambda: client.score(CONTEXT, CANDIDATES, request_id="s-1"),
                lambda: client.similarity({"user_id": "u1"}, CANDIDATES, request_id="s-2"),
                lambda: client.top_k({"user_id": "u1"}, 3, request_id="s-3"),
            ):
                with pytest.raises(ServiceError) as caught:
                    call()
                assert caught.value.request_id == received[-1]["x-request-id"]

        async def calls() -> list[object]:
            async with AsyncScoringClient(stand_in_url, max_retries=0) as client:
                return await asyncio.gather(
                    client.score(CONTEXT, CANDIDATES, request_id="a-1"),
                    client.similarity({"user_id": "u1"}, CANDIDATES, request_id="a-2"),
                    client.top_k({"user_id": "u1"}, 3, request_id="a-3"),
                    return_exceptions=True,
                )

        outcomes = asyncio.run(calls())
        assert sorted(error.request_id for error in outcomes) == ["a-1", "a-2", "a-3"]  # type: ignore[union-attr]
        sent = {headers["x-request-id"] for headers in received}
        assert len(received) == 6 and sent == {"s-1", "s-2", "s-3", "a-1", "a-2", "a-3"}


@pytest.mark.parametrize("request_id", REFUSED)
def test_a_request_id_the_service_would_refuse_is_refused_before_anything_is_sent(request_id: str) -> None:
    with stand_in(echoing_overload) as (stand_in_url, received), ScoringClient(stand_in_url) as client:
        with pytest.raises(ValueError, match=r"^request_id .* is no X-Request-ID the service takes: send 1 to 200"):
            client.score(CONTEXT, CANDIDATES, request_id=request_id)

        async def refused() -> None:
            async with AsyncScoringClient(stand_in_url) as client:
                await client.top_k({"user_id": "u1"}, 3, request_id=request_id)

        with pytest.raises(ValueError, match="request_id"):
            asyncio.run(refused())
        assert not received


def test_the_client_takes_the_request_ids_the_service_takes() -> None:
    """The rule is written in the client (which does not import the service); this holds the two together."""
    for request_id in REFUSED + TAKEN:
        try:
            checked_request_id(request_id)
            taken = True
        except ValueError:
            taken = False
        assert taken == acceptable_request_id(request_id.encode()), request_id
    with pytest.raises(ValueError, match="request_id must be text, not int"):
        checked_request_id(42)  # type: ignore[arg-type]
