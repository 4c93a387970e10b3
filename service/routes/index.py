"""``GET /``: where to go from the base URL (it answered a bare 404 to a browser opened there).

The routes the index lists are the app's own (what this service mounts: the admin routes only with a
token), and the docs' and the OpenAPI document's paths the app's settings, so it names no route that is
not served. Behind a proxy's prefix (``root_path``), each path carries it.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from common.version import DISTRIBUTION, VERSION

router = APIRouter(tags=["index"])

HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE"})  # a path item's others
HEALTH = {"live": "/v2/health/live", "ready": "/v2/health/ready"}


class ServiceIndex(BaseModel):
    name: str
    version: str
    docs: str | None = Field(description="The interactive API documentation (Swagger UI); null where it is off.")
    openapi: str | None = Field(description="The OpenAPI document; null where it is off.")
    health: dict[str, str] = Field(description="Liveness and readiness (KServe V2).")
    routes: list[str] = Field(description='Every route served, as "METHOD /path" (HEAD wherever GET).')


@router.get("/", response_class=Response, responses={200: {"model": ServiceIndex}})
async def service_index(request: Request) -> Response:
    """The service's name and version, and where to go: the docs, the OpenAPI document, health, every route."""
    app, prefix = request.app, request.scope.get("root_path", "")
    body = {
        "name": DISTRIBUTION,
        "version": VERSION,
        "docs": prefix + app.docs_url if app.docs_url else None,
        "openapi": prefix + app.openapi_url if app.openapi_url else None,
        "health": {name: prefix + path for name, path in HEALTH.items()},
        "routes": [f"{method} {prefix}{path}" for path, methods in documented(app).items() for method in methods],
    }
    return Response(orjson.dumps(body), media_type="application/json")


def documented(app: FastAPI) -> dict[str, list[str]]:
    """Each path of the app's OpenAPI document (its routes served: the admin ones only with a token) -> its
    methods, upper-case (HEAD, which the app answers wherever GET, is in none)."""
    paths = app.openapi()["paths"].items()
    return {path: [key.upper() for key in item if key.upper() in HTTP_METHODS] for path, item in paths}
