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


@pytest.mark.parametrize(
    ("method", "path", "said"),
    [
        ("GET", "/v2/", "no route GET /v2/; did you mean /v2?"),  # the KServe server metadata
        ("POST", "/v1/score/", "no route POST /v1/score/; did you mean /v1/score?"),
        ("GET", "/v2/models/esmm/ready//", "no route GET /v2/models/esmm/ready//; did you mean /v2/models/esmm/ready?"),
        ("GET", "/v1/score/", "no route GET /v1/score/; did you mean POST /v1/score?"),
    ],
)
def test_the_404_names_the_route_the_slash_hid(client: TestClient, method: str, path: str, said: str) -> None:
    """It said "Not Found" alone, as for a path that names nothing."""
    response = client.request(method, path, json=TWO_CANDIDATES, follow_redirects=False)
    assert response.status_code == 404 and response.json() == {"error": said, "field": None}


def test_an_unknown_path_says_where_the_routes_are(client: TestClient) -> None:
    response = client.get("/v3/score")
    assert response.status_code == 404
    assert response.json()["error"] == "no route GET /v3/score; GET / lists the routes served, /docs documents them"
    assert client.get("/v2").status_code == client.post("/v1/score", json=TWO_CANDIDATES).status_code == 200
