"""``/v1/similarity`` bodies as pydantic models: the OpenAPI document's, and the test's that checks every
2xx body against them (the pipeline checks the parsed JSON itself, as ``/v1/score`` does)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.score.schemas import FeatureValue, ModelRef

SIMILARITY_EXAMPLE = {
    "query": {"user_id": "u17", "user_segment": "s3", "device": "mobile", "query_category": "c4"},
    "k": 10,
}


class SimilarityRequest(BaseModel):
    """A query and either items to score or ``k`` for the top k of the indexed catalog."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SIMILARITY_EXAMPLE]})

    query: dict[str, FeatureValue] = Field(min_length=1, description="Query features (the query tower's).")
    items: list[dict[str, FeatureValue]] | None = Field(
        default=None, min_length=1, description="Items to score, each an object of item features."
    )
    k: int | None = Field(default=None, ge=1, description="Return the k best catalog items (at most CTR_MAX_TOP_K).")


class RankedItem(BaseModel):
    id: str = Field(description="The catalog item's id.")
    score: float = Field(ge=0, le=1, description="S(q, d) = sigmoid(scale * cos(v_q, v_d) + bias).")


class SimilarityResponse(BaseModel):
    scores: list[float] | None = Field(default=None, description="With 'items': one S(q, d) per item, in order.")
    items: list[RankedItem] | None = Field(default=None, description="With 'k': the best items, best first.")
    model: ModelRef
