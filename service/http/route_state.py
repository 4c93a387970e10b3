"""What FastAPI builds on the first request instead of at start-up, built by the lifespan before the service
says it is ready.

FastAPI (0.165) builds an included router's routes (each one's pydantic TypeAdapters, its dependencies, its
handler) on the first request that reaches that router, reads each endpoint's source from disk on its first
request (``inspect.getsourcelines``, for its error messages), and the app builds its OpenAPI document on the
first ``GET /openapi.json``. Each ran on the event loop, and every request of the process waited meanwhile:
under ``python -X dev`` the first ``/openapi.json`` held the loop 0.141 s, and the first V2 infer took 0.050 s
(0.007 s after), the first ``/v1/similarity`` 0.049 s (0.013 s after), once in each worker.
"""

from __future__ import annotations

from fastapi import FastAPI, routing


def build_route_state(app: FastAPI) -> None:
    """The app's OpenAPI document, and every route's state: building the document resolves each included
    router's routes (the state their first request built); each endpoint's source context is then read, which
    FastAPI caches by endpoint. No request is sent: nothing runs through the models."""
    app.openapi()
    # FastAPI's private cache of endpoint sources; a FastAPI without it reads none on a request
    endpoint_context = getattr(routing, "_extract_endpoint_context", None)
    if endpoint_context is None:
        return
    # each included router's routes (0.165); the routes themselves in a FastAPI that built them at inclusion
    contexts = getattr(routing, "iter_route_contexts", iter)
    for route in contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is not None and dependant.call is not None:
            endpoint_context(dependant.call)
