"""``GET /v1/models``: what is served, in which role, and on which execution provider."""

from __future__ import annotations

from typing import Literal

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from common.repository import REGIMES
from service.deps import ModelsDep


class TensorDescription(BaseModel):
    name: str
    dtype: str
    shape: list[int | str | None]


class Position(BaseModel):
    """model.json's ``position`` (common/repository.py): what an auction needs to price a slot."""

    regime: Literal[REGIMES] = Field(  # type: ignore[valid-type]
        description='The slot the served pCTR / pCTCVR hold for: "slot1", the top slot, or "logged", the average '
        "logged slot (position-blind training)."
    )
    ctr_ratios: list[float] | None = Field(
        default=None,
        description="slot1 only: ctr_ratios[k - 1] = the learned CTR at slot k over slot 1 (multiply to price slot k).",
    )


class ModelDescription(BaseModel):
    name: str
    roles: list[str] = Field(description="The roles it fills (common/roles.py), or 'retrieval'.")
    ready: bool
    version: int | None = None
    sha256: str | None = Field(
        default=None,
        description="The sha256 of this version's model.onnx (checked at its load): a version number is per "
        "repository, this names the same model on every machine.",
    )
    kind: str | None = None
    provider: str | None = Field(default=None, description="Execution provider the session actually uses.")
    inputs: list[TensorDescription] = []
    outputs: list[TensorDescription] = []
    features: list[str] = Field(default=[], description="The feature names its requests may carry.")
    required_features: list[str] = Field(
        default=[], description="Those a request must carry (the others read their default where absent)."
    )
    position: Position | None = Field(default=None, description="A CTR model's position regime; else null.")
    catalog_items: int | None = Field(default=None, description="Retrieval model: items in its catalog.")
    error: str | None = Field(default=None, description="Why no version is served, when not ready.")
    versions: list[int] = Field(
        default=[],
        description="Every version served (the newest fills the roles; /v1/score's `versions` picks another).",
    )
    version_sha256: dict[str, str] = Field(
        default={},
        description="Each served version -> the sha256 of its model.onnx.",
    )


class ModelList(BaseModel):
    models: list[ModelDescription]


router = APIRouter(tags=["models"])


@router.get("/v1/models", response_class=Response, responses={200: {"model": ModelList}})
async def list_models(models: ModelsDep) -> Response:
    """Each model a role names, and the retrieval model: version, kind, provider in use and tensors, or why
    it is not loaded."""
    return Response(orjson.dumps({"models": models.describe()}), media_type="application/json")
