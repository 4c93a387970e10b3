"""Request and response bodies as pydantic models, for the OpenAPI document only.

The hot path never builds these (scoring.py checks the parsed JSON by hand); they exist so that the
docs, generated clients and schema-driven tests see the exact shapes the service accepts and returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FeatureValue = str | int | float | None

SCORE_EXAMPLE = {
    "context": {"user_id": "u_1842", "hour": 21},
    "candidates": [
        {"ad_id": "ad_77", "ad_price": 12.5},
        {"ad_id": "ad_3", "ad_price": 3.0},
    ],
}


class ScoreRequest(BaseModel):
    """Features by name: context (shared by every candidate) and one object per candidate ad."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SCORE_EXAMPLE]})

    context: dict[str, FeatureValue] = Field(
        default_factory=dict, description="Request-level features (user, query, page), one value each."
    )
    candidates: list[dict[str, FeatureValue]] = Field(
        min_length=1,
        description="Candidate ads, each an object of ad features; a feature may not also be in context.",
    )


class Score(BaseModel):
    pctr: float = Field(ge=0, le=1, description="Position-debiased click probability.")
    pctcvr: float = Field(ge=0, le=1, description="Click-and-convert probability over the impression space.")
    pcvr: float = Field(ge=0, le=1, description="pctcvr / pctr clipped to [0, 1]: conversion given a click.")


class ModelRef(BaseModel):
    name: str
    version: int


class RoleModels(BaseModel):
    ctr: ModelRef
    ctcvr: ModelRef


class ScoreResponse(BaseModel):
    scores: list[Score] = Field(description="One entry per candidate, in request order.")
    models: RoleModels = Field(description="The model version that filled each role.")


class ErrorResponse(BaseModel):
    error: str = Field(description="What is wrong.")
    field: str | None = Field(description="The request field at fault, e.g. 'candidates[3].ad_price'.")


class Health(BaseModel):
    live: bool | None = None
    ready: bool | None = None
    unavailable: dict[str, str] | None = Field(default=None, description="Model name -> why it is not loaded.")


class TensorDescription(BaseModel):
    name: str
    dtype: str
    shape: list[int | str | None]


class ModelDescription(BaseModel):
    name: str
    roles: list[str]
    ready: bool
    version: int | None = None
    kind: str | None = None
    provider: str | None = Field(default=None, description="Execution provider the session actually uses.")
    inputs: list[TensorDescription] = []
    outputs: list[TensorDescription] = []
    features: list[str] = []
    position: dict[str, Any] | None = Field(
        default=None,
        description='The position regime of the served pCTR / pCTCVR ("slot1": the top slot, or "logged") and, '
        "for slot1, ctr_ratios[k - 1] = the learned CTR at slot k over slot 1 (multiply to price slot k).",
    )
    error: str | None = Field(default=None, description="Why no version is served, when not ready.")
    versions: list[int] = Field(default=[], description="Every version served (the newest fills the roles).")


class ModelList(BaseModel):
    models: list[ModelDescription]


def request_body(model: type[BaseModel], example: dict) -> dict:
    """``openapi_extra`` declaring a JSON request body the route reads itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(), "example": example}},
        }
    }


def error_responses(*statuses: int) -> dict[int | str, dict]:
    descriptions = {
        400: "Malformed JSON (including NaN or Infinity).",
        413: "Body or candidate count over the limit.",
        415: "Content-Type is not application/json.",
        422: "A field is missing, unknown or of the wrong type; `field` names it.",
        503: "A model the request needs is not loaded, or its queue is full (with Retry-After).",
        504: "The deadline passed before the model answered.",
        401: "Missing or wrong bearer token.",
        404: "No such model or version is served.",
    }
    return {status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses}
