"""Liveness and readiness, as the Open Inference Protocol (KServe V2) names them.

Each answers HEAD as GET, with the same status and headers and no body (uvicorn leaves it out): load
balancers probe with HEAD, and a 405 reads as a service down. HEAD is kept out of the OpenAPI schema.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from service.deps import ModelsDep


class Health(BaseModel):
    live: bool | None = None
    ready: bool | None = None
    unavailable: dict[str, str] | None = Field(default=None, description="Model name -> why it is not loaded.")


router = APIRouter(prefix="/v2/health", tags=["health"])


@router.head("/live", include_in_schema=False)
@router.get("/live", response_class=Response, responses={200: {"model": Health}})
async def live() -> Response:
    """The process is up and answering."""
    return Response(orjson.dumps({"live": True}), media_type="application/json")


@router.head("/ready", include_in_schema=False)
@router.get(
    "/ready",
    response_class=Response,
    responses={200: {"model": Health}, 503: {"model": Health, "description": "A role model is not loaded."}},
)
async def ready(models: ModelsDep) -> Response:
    """Every model a role needs is loaded and warmed up."""
    body = {"ready": models.ready}
    if not models.ready:
        body["unavailable"] = models.unavailable()
    return Response(orjson.dumps(body), status_code=200 if models.ready else 503, media_type="application/json")
