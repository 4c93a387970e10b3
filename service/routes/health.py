"""Liveness and readiness, as the Open Inference Protocol (KServe V2) names them.

Each answers HEAD as GET, with the same status and headers and no body (uvicorn leaves it out): load
balancers probe with HEAD, and a 405 reads as a service down. HEAD is kept out of the OpenAPI schema.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from service.deps import ModelsDep


class Health(BaseModel):
    live: bool | None = None
    ready: bool | None = None
    unavailable: dict[str, str] | None = Field(default=None, description="Model name -> why it is not loaded.")
    draining: bool | None = Field(default=None, description="Shutting down (SIGTERM): send new requests elsewhere.")


router = APIRouter(prefix="/v2/health", tags=["health"])


@router.get("/live", response_class=Response, responses={200: {"model": Health}})
async def live() -> Response:
    """The process is up and answering."""
    return Response(orjson.dumps({"live": True}), media_type="application/json")


@router.get(
    "/ready",
    response_class=Response,
    responses={
        200: {"model": Health},
        503: {
            "model": Health,
            "description": "A role model (a retrieval service's retrieval model) is not loaded, or the service is "
            "shutting down.",
        },
    },
)
async def ready(request: Request, models: ModelsDep) -> Response:
    """Every model a role needs (a retrieval service, with no roles: its retrieval model) is loaded and warmed
    up, and the service is not shutting down (a load balancer probing a kept-alive connection during the drain
    takes it out of rotation)."""
    draining, ready = request.app.state.draining, request.app.ready
    body: dict = {"ready": ready}
    if not models.ready:
        body["unavailable"] = models.unavailable()
    if draining:
        body["draining"] = True
    return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type="application/json")
