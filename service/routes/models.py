"""``GET /v1/models``: what is served, in which role, and on which execution provider."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from service.deps import ModelsDep
from service.schemas import ModelList

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_class=Response, responses={200: {"model": ModelList}})
async def list_models(models: ModelsDep) -> Response:
    """Each model a role names: its version, kind, provider in use and tensors, or why it is not loaded."""
    return Response(orjson.dumps({"models": models.describe()}), media_type="application/json")
