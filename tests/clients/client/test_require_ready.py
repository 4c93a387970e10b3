"""What a command given ``--url`` says of the server there before it starts: a server that answers the health
route 404 (``python -m http.server``, or a URL ending in a path the service is not under) is no ctr service, which
was said as "the service answers but is not ready"; a 503 is a service not ready yet."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from clients.client import require_ready
from tests.support.stand_in import reply, stand_in


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (404, "answered 404: no ctr service there"),
        (503, "the service answers but is not ready (GET /v2/health/ready: 503)"),
    ],
)
def test_a_server_without_the_health_route_is_said_to_be_no_service(status: int, said: str) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        reply(handler, status, b"{}")

    with stand_in(answer) as (url, _), pytest.raises(ValueError, match="--url") as refused:
        require_ready(url)
    assert said in str(refused.value)


def test_a_ready_service_passes() -> None:
    with stand_in(lambda handler: reply(handler, 200, b"{}")) as (url, _):
        require_ready(url)


def test_a_url_without_its_scheme_is_said_so_with_the_url_to_write() -> None:
    """``--url localhost:8000``, a service listening there, was "no service answers there (Request URL has an
    unsupported protocol 'localhost://'.)": httpx reads ``localhost`` as the scheme."""
    with stand_in(lambda handler: reply(handler, 200, b"{}")) as (url, _):
        bare = url.removeprefix("http://")
        with pytest.raises(ValueError) as refused:
            require_ready(bare)
        assert str(refused.value) == f"--url {bare} names no scheme: write {url}"
        require_ready(url)
    with pytest.raises(ValueError, match=r"^--url //host:1 names no scheme: write it as http://HOST:PORT$"):
        require_ready("//host:1")
