"""The answers of the service as frozen dataclasses shaped like its JSON, read from a 200's body; any other
answer, or a 200 that is not JSON, raised as ``ServiceError``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from clients.client.errors import ServiceError, shortened
from clients.client.retry_after import retry_after
from common.plural import counted


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int


@dataclass(frozen=True)
class Score:
    """One candidate's probabilities, all for the top slot (DESIGN.md: the service's contract)."""

    pctr: float
    pctcvr: float
    pcvr: float


@dataclass(frozen=True)
class ScoreResponse:
    scores: list[Score]  # one per candidate, in request order
    models: dict[str, ModelRef]  # role ("ctr", "ctcvr") -> the model version that filled it


@dataclass(frozen=True)
class RankedItem:
    id: str
    score: float


@dataclass(frozen=True)
class SimilarityResponse:
    scores: list[float]  # one per item, in request order
    model: ModelRef  # the retrieval model version that scored them


@dataclass(frozen=True)
class TopKResponse:
    items: list[RankedItem]  # the k best catalog items, best first
    model: ModelRef


@dataclass(frozen=True)
class ModelStatus:
    """One entry of ``GET /v1/models``: a model a role names, loaded or not (and why)."""

    name: str
    roles: list[str]
    ready: bool
    version: int | None = None
    versions: list[int] | None = None
    sha256: str | None = None  # of the newest served version's model.onnx: the same on every machine serving it
    version_sha256: dict[str, str] | None = None  # each served version (as a string) -> its model.onnx's sha256
    kind: str | None = None
    provider: str | None = None
    position: dict[str, Any] | None = None  # {"regime": ..., "ctr_ratios": [...]} where the service says
    inputs: list[dict[str, Any]] | None = None  # {"name", "dtype", "shape"} of each ONNX input
    outputs: list[dict[str, Any]] | None = None
    features: list[str] | None = None  # the feature names its requests may carry
    required_features: list[str] | None = None  # those its requests must carry (None: a service that does not say)
    catalog_items: int | None = None  # a retrieval model's catalog size
    error: str | None = None


def _counted(values: list[Any], expected: int, what: str) -> list[Any]:
    if len(values) != expected:
        raise ValueError(f"the service answered {counted(len(values), 'score')} for {expected} {what}")
    return values


def parse_model(body: Mapping[str, Any]) -> ModelRef:
    return ModelRef(str(body["name"]), int(body["version"]))


def parse_score(body: Mapping[str, Any], candidates: int | None = None) -> ScoreResponse:
    scores = [Score(float(s["pctr"]), float(s["pctcvr"]), float(s["pcvr"])) for s in body["scores"]]
    return ScoreResponse(
        scores=scores if candidates is None else _counted(scores, candidates, "candidates"),
        models={role: parse_model(m) for role, m in body["models"].items()},
    )


def parse_models(body: Mapping[str, Any]) -> list[ModelStatus]:
    known = set(ModelStatus.__dataclass_fields__)
    return [ModelStatus(**{k: v for k, v in entry.items() if k in known}) for entry in body["models"]]


def parse_similarity(body: Mapping[str, Any], items: int | None = None) -> SimilarityResponse:
    scores = [float(s) for s in body["scores"]]
    return SimilarityResponse(scores if items is None else _counted(scores, items, "items"), parse_model(body["model"]))


def parse_top_k(body: Mapping[str, Any]) -> TopKResponse:
    items = [RankedItem(str(item["id"]), float(item["score"])) for item in body["items"]]
    return TopKResponse(items, parse_model(body["model"]))


def decode(response: httpx.Response, content: bytes) -> Any:
    """The JSON body (``content``) of a 200, or ServiceError with the service's message and field."""
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = None
    if response.status_code == 200 and body is not None:
        return body
    text = content.decode("utf-8", "replace")
    request_id = response.headers.get("x-request-id")
    if response.status_code == 200:
        raise ServiceError(200, f"the answer is not JSON: {text[:200]!r}", request_id=request_id)
    error = body.get("error") if isinstance(body, dict) else None
    field = body.get("field") if isinstance(body, dict) else None
    said = str(error) if error else shortened(text) or "no body"
    raise ServiceError(response.status_code, said, field, retry_after(response), request_id)
