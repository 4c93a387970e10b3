"""``/v1/score`` bodies as pydantic models: the OpenAPI document's, and the test's that checks them.

The hot path never builds these (pipeline.py checks the parsed JSON by hand and renders with orjson);
tests/integration/test_reliability.py validates the 200 bodies a real server gives against them
(``response_models()``: every schemathesis case of ``test_no_server_errors_anywhere_in_the_schema`` and
every documented example).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, create_model

from common.roles import ROLES

FeatureValue = str | int | float | None

SCORE_EXAMPLE = {  # features of the default served models (the world simulator's, `ctr sample-request`)
    "context": {"user_id": "u1606", "device": "mobile", "hour": 21},
    "candidates": [
        {"ad_id": "a947", "ad_category": "c21", "advertiser_id": "adv307", "ad_price": 59.3},
        {"ad_id": "a732", "ad_category": "c0", "advertiser_id": "adv245", "ad_price": 47.2, "ad_quality": 0.62},
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
    versions: dict[str, Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        description="Optional, for online experiments (A/B, canary, shadow): model name -> which of its served "
        "versions scores this request, in every role that model fills (its newest without it). A name that fills "
        "no role is a 422, a version not served a 404 naming the served ones (GET /v1/models lists them). The "
        "answer's `models` names the versions that scored it.",
        examples=[{"esmm": 1}],
    )


class Score(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pctr: float = Field(ge=0, le=1, description="Position-debiased click probability.")
    pctcvr: float = Field(ge=0, le=1, description="Click-and-convert probability over the impression space.")
    pcvr: float = Field(
        ge=0,
        le=1,
        description="Conversion given a click: the ctcvr model's pCVR, so that pctcvr = pctr * pcvr (or, for a ctcvr "
        "model without a pcvr output, pctcvr / pctr, its pctcvr held to [0, pctr]).",
    )


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: int


RoleModels = create_model(  # one field per role (common/roles.py)
    "RoleModels", __config__=ConfigDict(extra="forbid"), **{role.name: (ModelRef, ...) for role in ROLES}
)


class ScoreResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scores: list[Score] = Field(description="One entry per candidate, in request order.")
    models: RoleModels = Field(description="The model version that filled each role.")  # type: ignore[valid-type]
