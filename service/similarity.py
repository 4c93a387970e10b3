"""The similarity hot path: request bytes -> encoded query (and items) -> scores -> response bytes.

Two forms, told apart by their keys:

    {"query": {...}, "items": [{...}, ...]}  ->  {"scores": [S, ...], "model": {...}}      one per item
    {"query": {...}, "k": 10}                ->  {"items": [{"id", "score"}, ...], "model": {...}}

The top-k form ranks the stored catalog embeddings. Values are checked as ``/v1/score`` checks them
(the same column gathering, the same JSON errors); the field paths name ``query.<feature>`` and
``items[i].<feature>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from common.encoder import FeatureEncoder, FeatureError
from service.errors import InputError, ModelUnavailable
from service.json_body import load_object
from service.retrieval import RetrievalState
from service.scoring import gather_columns
from service.settings import Settings

BODY_KEYS = frozenset({"query", "items", "k"})


def similarity(body: bytes, state: RetrievalState, settings: Settings) -> bytes:
    model = state.model
    if model is None:
        raise ModelUnavailable(f"no retrieval model: {state.error}")
    query, items, k = parse_body(body, settings)
    encoded_query = _encode(model.query.encoder, [query], "query", settings)
    reference = {"name": model.manifest.name, "version": model.manifest.version}
    if items is not None:
        scores = model.score_items(encoded_query, _encode(model.item.encoder, items, "items", settings))
        return orjson.dumps({"scores": scores.tolist(), "model": reference})
    best, scores = model.top_k(encoded_query, k)
    found = [{"id": str(i), "score": s} for i, s in zip(model.ids[best].tolist(), scores.tolist(), strict=True)]
    return orjson.dumps({"items": found, "model": reference})


def parse_body(body: bytes, settings: Settings) -> tuple[dict[str, Any], list[Any] | None, int]:
    data = load_object(body, BODY_KEYS, "'query' and either 'items' or 'k'")
    query = data.get("query")
    if type(query) is not dict:
        raise InputError(422, "query is required: an object of query feature values", "query")
    if not query:
        raise InputError(422, "query must not be empty", "query")
    if ("items" in data) == ("k" in data):
        raise InputError(422, "give exactly one of 'items' (score them) or 'k' (top k of the catalog)", "k")
    if "items" in data:
        items = data["items"]
        if type(items) is not list:
            raise InputError(422, "items must be a list of objects", "items")
        if not items:
            raise InputError(422, "items must not be empty", "items")
        if len(items) > settings.max_candidates:
            raise InputError(413, f"{len(items)} items; at most {settings.max_candidates} per request", "items")
        return query, items, 0
    k = data["k"]
    if type(k) is not int:
        raise InputError(422, "k must be an integer", "k")
    if not 1 <= k <= settings.max_top_k:
        raise InputError(422, f"k must be in 1..{settings.max_top_k}, not {k}", "k")
    return query, None, k


def _encode(encoder: FeatureEncoder, rows: list[Any], where: str, settings: Settings) -> dict[str, np.ndarray]:
    """The tower's inputs for ``rows`` (the query is one row); errors name ``where``'s field."""
    spec = encoder.spec
    try:
        columns = gather_columns(rows, {}, frozenset(f.name for f in spec.features), settings.max_string_chars)
    except InputError as error:
        message = error.message.replace("served models", f"{where} tower").replace("candidate feature", "feature")
        raise InputError(error.status, message, _path(error.field, where)) from None
    for feature in spec.features:
        column = columns.get(feature.name)
        if feature.required and (column is None or None in column):
            index = 0 if column is None else column.index(None)
            raise InputError(422, f"feature {feature.name!r} is required but missing", _row(where, index, feature.name))
    try:
        return encoder.encode(columns, len(rows)).as_inputs()
    except FeatureError as error:
        raise InputError(422, str(error), _row(where, "*", error.feature)) from None


def _row(where: str, index: int | str, name: str) -> str:
    return f"query.{name}" if where == "query" else f"items[{index}].{name}"


def _path(field: str | None, where: str) -> str | None:
    """``candidates[3].x`` as gathered -> ``items[3].x`` or (for the query) ``query.x``."""
    if field is None or not field.startswith("candidates"):
        return field
    if where == "query":
        rest = field.split(".", 1)
        return f"query.{rest[1]}" if len(rest) == 2 else "query"
    return "items" + field[len("candidates") :]
