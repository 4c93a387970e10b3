"""What FastAPI builds lazily (service/http/route_state.py) is built by the lifespan, before the service answers
ready: the first ``/openapi.json`` held the event loop 0.1-0.2 s, and the first request of each router waited
for its routes to be built and its endpoint's source to be read from disk."""

from __future__ import annotations

import pytest
from fastapi import routing
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

# FastAPI's private names this test reads (0.165's): a FastAPI without them builds routes otherwise, and
# route_state.py falls back without them
PRIVATE_NAMES = ("_endpoint_context_cache", "_IncludedRouter", "iter_route_contexts")


@pytest.mark.skipif(
    not all(hasattr(routing, name) for name in PRIVATE_NAMES), reason="a FastAPI without 0.165's lazy route state"
)
def test_the_lifespan_builds_the_openapi_document_and_every_routes_state(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FastAPI's cache of endpoint sources is the process's: emptied, so that what another test's requests read
    # does not count
    monkeypatch.setattr(routing, "_endpoint_context_cache", {})
    app = create_app(settings.model_copy(update={"admin_token": "t"}))
    included = [route for route in app.router.routes if isinstance(route, routing._IncludedRouter)]
    assert included and all(router._effective_candidates_version is None for router in included)  # lazy until then
    with TestClient(app) as client:  # the lifespan has run; no request yet
        assert app.openapi_schema is not None
        assert all(router._effective_candidates_version is not None for router in included)
        routes = routing.iter_route_contexts(app.routes)
        endpoints = {route.dependant.call for route in routes if getattr(route, "dependant", None) is not None}
        assert {"infer", "similarity", "load"} <= {endpoint.__name__ for endpoint in endpoints}  # admin's too
        assert {id(endpoint) for endpoint in endpoints} <= routing._endpoint_context_cache.keys()
        assert client.get("/v2/health/ready").status_code == 200
