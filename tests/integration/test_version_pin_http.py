"""``/v1/score``'s ``versions`` on a real server (``python -m service``: the request answered by the
connection itself, http/protocol.py's direct routes), sent by the typed clients' ``versions=``.

An A/B test or canary sends each user's arm: the version a request names scores it, and the answer's
``models`` says so; without ``versions`` the newest served version scores, as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from clients.client import AsyncScoringClient, ScoringClient, ServiceError
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm

CONTEXT = {"user_id": "u_1"}
CANDIDATES = [{"ad_id": "ad_3", "ad_price": 2.5}, {"ad_id": "ad_9", "ad_price": 11.0}]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of esmm versions 1 and 2 (``latest = 2``), each its own weights."""
    repository = tmp_path_factory.mktemp("models")
    for seed in range(2):
        publish_tiny_esmm(repository, seed=seed)
    (repository / "esmm" / "config.toml").write_text("[serving]\nversion_policy = { latest = 2 }\n", encoding="utf-8")
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(repository, log, ctr_model="esmm") as (url, process):
        yield url
    assert process.returncode == 0, log.read_text(encoding="utf-8")


def test_the_typed_clients_pin_a_served_version_and_the_newest_scores_without(url: str) -> None:
    with ScoringClient(url) as client:
        newest = client.score(CONTEXT, CANDIDATES)
        first = client.score(CONTEXT, CANDIDATES, versions={"esmm": 1})
        assert client.score(CONTEXT, CANDIDATES, versions={"esmm": 2}) == newest
        with pytest.raises(ServiceError) as refused:
            client.score(CONTEXT, CANDIDATES, versions={"esmm": 3})
    assert {role: ref.version for role, ref in newest.models.items()} == {"ctr": 2, "ctcvr": 2}
    assert {role: ref.version for role, ref in first.models.items()} == {"ctr": 1, "ctcvr": 1}
    assert first.scores != newest.scores
    assert (refused.value.status, refused.value.field) == (404, "versions.esmm")
    assert "served versions: [1, 2]" in str(refused.value)

    async def pinned_asynchronously() -> object:
        async with AsyncScoringClient(url) as client:
            return await client.score(CONTEXT, CANDIDATES, versions={"esmm": 1})

    assert asyncio.run(pinned_asynchronously()) == first
