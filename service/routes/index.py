"""``GET /``: where to go from the base URL (it answered a bare 404 to a browser opened there), and the
404 of a path no route matches, which says where to go too (Starlette's said "Not Found" alone).

The routes the index lists are the app's own (what this service mounts: the admin routes only with a
token), and the docs' and the OpenAPI document's paths the app's settings, so it names no route that is
not served. Behind a proxy's prefix (``root_path``), each path carries it.
"""

from __future__ import annotations

import re
from functools import cache

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from common.version import DISTRIBUTION, VERSION
from service.http.errors import ApiError
from service.routes import health

router = APIRouter(tags=["index"])

HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "TRACE"})  # a path item's others
HEALTH = {name: f"{health.router.prefix}/{name}" for name in ("live", "ready")}  # the health routes


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


def unknown_path(app: FastAPI) -> ASGIApp:
    """The app's router's ``default``: a path no route matches is a 404 that names the route it differs from by
    trailing slashes alone (``no route GET /v2/; did you mean /v2?``; answered neither by a redirect, app.py's
    ``redirect_slashes``, nor by the route), or else says where the routes are listed."""
    starlettes = app.router.not_found  # a WebSocket's: closed, as before

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await starlettes(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        bare = _within_prefix(scope).rstrip("/")
        routes = documented(app).items()
        near = sorted({m for template, methods in routes if _pattern(template).match(bare) for m in methods})
        if bare and near:
            shown = path.rstrip("/")
            hint = f"did you mean {shown}?" if method in near else f"did you mean {' or '.join(near)} {shown}?"
        else:
            prefix = scope.get("root_path", "")
            docs = f", {prefix}{app.docs_url} documents them" if app.docs_url else ""
            hint = f"GET {prefix}/ lists the routes served{docs}"
        raise ApiError(404, f"no route {method} {path}; {hint}")

    return not_found


def _within_prefix(scope: Scope) -> str:
    """The request's path less the proxy's prefix (``root_path``), as the routes match it."""
    path, prefix = scope["path"], scope.get("root_path", "")
    return path[len(prefix) :] if prefix and path.startswith(prefix + "/") else path


def documented(app: FastAPI) -> dict[str, list[str]]:
    """Each path of the app's OpenAPI document (its routes served: the admin ones only with a token) -> its
    methods, upper-case (HEAD, which the app answers wherever GET, is in none)."""
    paths = app.openapi()["paths"].items()
    return {path: [key.upper() for key in item if key.upper() in HTTP_METHODS] for path, item in paths}


@cache
def _pattern(template: str) -> re.Pattern[str]:
    """A path template's (``/v2/models/{name}``) regular expression, as Starlette's routing compiles it."""
    return compile_path(template)[0]
