"""The typed client against the real service (uvicorn on loopback, a real ONNX model): typed
replies, typed errors carrying the service's message and field, Retry-After honoured on 503 (from a
stand-in that answers as the overloaded service does),
an admin reload seen through /v1/models, and a call lost to the keep-alive race sent once more."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clients.client import AsyncScoringClient, ModelRef, Score, ScoreResponse, ScoringClient, ServiceError
from clients.latency_proxy import latency_proxy
from common.repository import versions
from tests.support.score_call import CANDIDATES, CONTEXT, overloaded
from tests.support.server import port_of, running_server
from tests.support.stand_in import stand_in
from tests.support.tiny_model import publish_tiny_esmm

TOKEN = "client-test-admin-token"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(root, log, ctr_model="esmm", admin_token=TOKEN, access_log="false") as (url, _):
        yield url, root


def test_score_returns_typed_scores_and_model_versions(service: tuple[str, Path]) -> None:
    url, root = service
    with ScoringClient(url) as client:
        reply = client.score(CONTEXT, CANDIDATES)
    assert isinstance(reply, ScoreResponse) and len(reply.scores) == len(CANDIDATES)
    assert all(isinstance(s, Score) and 0 <= s.pctcvr <= s.pctr <= 1 for s in reply.scores)
    served = max(versions(root, "esmm"))  # whichever ran first, this or the reload test that publishes one more
    assert reply.models == {"ctr": ModelRef("esmm", served), "ctcvr": ModelRef("esmm", served)}


def test_bad_input_raises_typed_error_with_the_services_field(service: tuple[str, Path]) -> None:
    url, _ = service
    bad = [*CANDIDATES[:2], {"ad_id": "ad_9", "ad_price": "expensive"}]
    with ScoringClient(url) as client, pytest.raises(ServiceError) as caught:
        client.score(CONTEXT, bad)
    assert caught.value.status == 422
    assert caught.value.field == "candidates[2].ad_price"
    assert "ad_price" in caught.value.error
    with ScoringClient(url) as client, pytest.raises(ServiceError) as missing:
        client.score({"hour": "3"}, CANDIDATES)
    assert missing.value.status == 422 and missing.value.field == "context.user_id"


def test_async_client_keeps_many_requests_in_flight_and_types_errors(service: tuple[str, Path]) -> None:
    url, _ = service

    async def run() -> tuple[list[ScoreResponse], ServiceError]:
        async with AsyncScoringClient(url, max_connections=8) as client:
            replies = await asyncio.gather(*(client.score({"user_id": f"u{i}"}, CANDIDATES) for i in range(40)))
            try:
                await client.score(CONTEXT, [])
            except ServiceError as error:
                return list(replies), error
        raise AssertionError("an empty candidate list was accepted")

    replies, error = asyncio.run(run())
    assert len(replies) == 40 and all(len(r.scores) == 3 for r in replies)
    assert error.status == 422 and error.field == "candidates"


def test_an_async_client_called_from_a_second_event_loop_says_it_is_bound_to_its_first(
    service: tuple[str, Path],
) -> None:
    """A second asyncio.run with the same client failed inside httpx's pool ("Event loop is closed")."""
    url, _ = service
    client = AsyncScoringClient(url)  # made outside any loop: bound by its first call

    async def two_calls() -> list[ScoreResponse]:
        return [await client.score(CONTEXT, CANDIDATES), await client.score(CONTEXT, CANDIDATES[:1])]

    first = asyncio.run(two_calls())  # one loop, as many calls as wanted
    assert [len(reply.scores) for reply in first] == [3, 1]
    for call in (two_calls, client.models, client.ready, client.aclose):
        with pytest.raises(RuntimeError) as caught:
            asyncio.run(call())
        assert str(caught.value).startswith("this AsyncScoringClient is bound to the event loop it was first used in")
        assert "make one client per event loop" in str(caught.value)

    async def own_loop() -> bool:
        async with AsyncScoringClient(url) as fresh:  # one client per loop: served
            return await fresh.ready()

    assert asyncio.run(own_loop()) is True


def test_admin_reload_is_reported_by_models(service: tuple[str, Path]) -> None:
    url, root = service
    with ScoringClient(url) as client:
        with pytest.raises(ServiceError) as refused:
            client.load_model("esmm", "wrong-token-of-some-length")
        assert refused.value.status == 401 and refused.value.field == "Authorization"
        version = publish_tiny_esmm(root, seed=1)
        assert version in client.load_model("esmm", TOKEN)
        (entry,) = client.models()
        assert entry.name == "esmm" and entry.ready and entry.version == version
        assert client.score(CONTEXT, CANDIDATES).models["ctr"].version == version


def test_503_with_retry_after_is_waited_out_then_raised() -> None:
    with stand_in(overloaded) as (url, _):
        with ScoringClient(url, max_retries=2) as client, pytest.raises(ServiceError) as caught:
            client.score(CONTEXT, CANDIDATES)
        assert len(client.waits) == 2 and all(1.0 <= wait <= 1.5 for wait in client.waits)  # jittered, once per retry
        assert client.retried == 2  # counted: the auction's report said nothing of a third of its calls retried
        assert caught.value.status == 503 and caught.value.retry_after_s == 1.0
        assert "queue is full" in caught.value.error

        async def refused() -> list[float]:
            async with AsyncScoringClient(url, max_retries=1) as client:
                with pytest.raises(ServiceError):
                    await client.score(CONTEXT, CANDIDATES)
                return list(client.waits)

        (wait,) = asyncio.run(refused())
        assert 1.0 <= wait <= 1.5


def test_a_request_larger_than_the_model_s_queue_is_413_and_not_retried(tmp_path: Path) -> None:
    root = tmp_path / "models"
    publish_tiny_esmm(root)
    (root / "esmm" / "config.toml").write_text('kind = "esmm"\n[serving]\nmax_batch_size = 1\nmax_queue_items = 1\n')
    with (
        running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false") as (url, _),
        ScoringClient(url, max_retries=2) as client,
    ):
        with pytest.raises(ServiceError) as caught:
            client.score(CONTEXT, CANDIDATES)
        assert caught.value.status == 413 and not client.waits
        assert "queues at most 1" in caught.value.error
        assert len(client.score(CONTEXT, CANDIDATES[:1]).scores) == 1  # one candidate fits the queue


def test_a_call_lost_to_the_keep_alive_race_is_sent_once_more_when_it_changes_nothing(tmp_path: Path) -> None:
    """The service closes an idle connection (after 0.2 s, no grace) and a proxy passes the close on to the
    client 1.5 s late, as a network does while it is on its way: the client's next call goes out on a
    connection the service has closed and gets no answer. A score is sent once more, on a fresh
    connection, and answered; an admin load (not a call that changes nothing) raises."""
    root = tmp_path / "models"
    publish_tiny_esmm(root)
    settings = {"keep_alive_s": "0.2", "keep_alive_grace_s": "0", "admin_token": TOKEN, "access_log": "false"}
    with (
        running_server(root, tmp_path / "log", ctr_model="esmm", **settings) as (url, _),
        latency_proxy(port_of(url), close_delay_s=1.5) as port,
    ):
        proxied = f"http://127.0.0.1:{port}"
        with ScoringClient(proxied) as client:
            client.score(CONTEXT, CANDIDATES)
            time.sleep(0.7)  # the service has closed the connection; the client has not heard
            assert len(client.score(CONTEXT, CANDIDATES).scores) == len(CANDIDATES)
            assert client.resent == 1
            time.sleep(0.7)
            with pytest.raises(httpx.RemoteProtocolError):
                client.load_model("esmm", TOKEN)
            assert client.resent == 1

        async def lost_and_sent_again() -> tuple[int, int]:
            async with AsyncScoringClient(proxied) as client:
                await client.score(CONTEXT, CANDIDATES)
                await asyncio.sleep(0.7)
                reply = await client.score(CONTEXT, CANDIDATES)
                return len(reply.scores), client.resent

        assert asyncio.run(lost_and_sent_again()) == (len(CANDIDATES), 1)
