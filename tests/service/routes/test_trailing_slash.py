"""A path with a slash too many is an unknown path: Starlette redirected it (307) to a URL it built from
``Host`` over ``http://`` whatever the client's scheme, and without a proxy's prefix, and told a POST to send
its body there again (the direct route of ``/v1/score``, under ``ctr serve``, answers it 404 too:
tests/integration/test_http_edges.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.score_bodies import TWO_CANDIDATES

BEHIND_A_PROXY = {"x-forwarded-proto": "https", "host": "api.example.com"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/v2/health/ready/"), ("POST", "/v1/score/")])
def test_a_trailing_slash_is_404_not_a_redirect(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json=TWO_CANDIDATES, headers=BEHIND_A_PROXY, follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers, response.headers
    assert response.json()["error"]
