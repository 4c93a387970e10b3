"""The similarity pipeline: request bytes -> encoded query (and items) -> scores -> response bytes.

Two forms, told apart by their keys:

    {"query": {...}, "items": [{...}, ...]}  ->  {"scores": [S, ...], "model": {...}}      one per item
    {"query": {...}, "k": 10}                ->  {"items": [{"id", "score"}, ...], "model": {...}}

The top-k form ranks the stored catalog embeddings. Values are checked as ``/v1/score`` checks them
(the same column gathering, the same JSON errors); the field paths name ``query.<feature>`` and
``items[i].<feature>``.

The query is embedded through the retrieval model's batcher, so the queries of concurrent requests
share one run of the query tower; the item tower (``items``) and the catalog ranking (``k``) run in
the thread pool, bound by the request's deadline too (a 504 when they end past it; they answered 200
late) and counted in the model's metrics as a run of that many items (one run of one item was all a
1,000-item request counted).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import numpy as np
import orjson

from common.encoder import FeatureEncoder, FeatureError, whole_number
from service.batching import client
from service.http.body import INLINE_BODY_BYTES, load_object
from service.http.disconnect import Watcher
from service.http.errors import DeadlineExceeded, InputError, ModelUnavailable
from service.models.retrieval_model import EMBEDDING, RetrievalModel
from service.models.snapshot import ServingModels
from service.score.features import check_kinds, gather_columns
from service.settings import Settings

BODY_KEYS = frozenset({"query", "items", "k"})


async def respond(
    body: bytes, models: ServingModels, settings: Settings, deadline: float, watch_disconnect: Watcher
) -> bytes:
    """The response body for a request body; ApiError for anything the client must fix."""
    model = models.retrieval
    if model is None:
        raise ModelUnavailable(models.retrieval_unavailable())
    batcher = client.live_batcher(models, model)
    if len(body) <= INLINE_BODY_BYTES:
        query, items, k, clipped = prepare(body, model, settings)
    else:
        query, items, k, clipped = await asyncio.to_thread(prepare, body, model, settings)
    queued = client.enqueue([(model, batcher, query)], 1, deadline, clipped)
    embedding = (await client.outcomes(queued, watch_disconnect))[model][EMBEDDING][0]
    loop = asyncio.get_running_loop()
    now = loop.time()
    if now >= deadline:  # the query tower answered in time, the event loop came back to the request too late
        late_ms = (now - deadline) * 1000.0
        raise DeadlineExceeded(f"after model {batcher.label}'s query tower ran: {late_ms:.1f} ms late on its answer")
    started = time.perf_counter()
    answer = await asyncio.to_thread(render, model, embedding, items, k)
    if items is not None:  # the item tower's run, counted as the query tower's batches are
        batcher.stats.executed(len(next(iter(items.values()))), time.perf_counter() - started)
    now = loop.time()
    if now >= deadline:  # the items (or the catalog) took it past: 504, as a late batch is
        scored = "the items" if items is not None else "the catalog"
        late_ms = (now - deadline) * 1000.0
        raise DeadlineExceeded(f"while model {batcher.label} scored {scored}: {late_ms:.1f} ms late when done")
    return answer


def prepare(
    body: bytes, model: RetrievalModel, settings: Settings
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None, int, client.Clipped]:
    """(the encoded query, the encoded items or None, k, the values both towers clipped): everything checked
    and encoded; the clipped values are counted once the batcher took the query (``client.enqueue``), so that
    a request refused on the way, a 422 of the items or a 503 of a full queue, counts none."""
    query, items, k = parse_body(body, settings)
    clipped: Counter = Counter()
    encoded_query = _encode(model.query.encoder, [query], "query", settings, clipped)
    encoded_items = _encode(model.item.encoder, items, "items", settings, clipped) if items is not None else None
    # counted through the query tower's encoder: the towers share the version's counter (models/manager.py)
    return encoded_query, encoded_items, k, {model.query.encoder: clipped}


def render(model: RetrievalModel, query: np.ndarray, items: dict[str, np.ndarray] | None, k: int) -> bytes:
    """The answer for a query embedding (L,): each item's score, or the top k of the catalog."""
    reference = {"name": model.name, "version": model.version}
    if items is not None:
        return orjson.dumps({"scores": model.score_items(query, items).tolist(), "model": reference})
    best, scores = model.top_k(query, k)
    found = [{"id": str(i), "score": s} for i, s in zip(model.ids[best].tolist(), scores.tolist(), strict=True)]
    return orjson.dumps({"items": found, "model": reference})


def parse_body(body: bytes, settings: Settings) -> tuple[dict[str, Any], list[Any] | None, int]:
    """(query, items or None, k); an ``items`` or ``k`` of null is absent, as the schema has it: a client
    generated from the OpenAPI document sends its unset optional fields so."""
    data = load_object(body, BODY_KEYS, "'query' and either 'items' or 'k'")
    query = data.get("query")
    if type(query) is not dict:
        raise InputError(422, "query is required: an object of query feature values", "query")
    if not query:
        raise InputError(422, "query must not be empty", "query")
    items, k = data.get("items"), data.get("k")
    if (items is None) == (k is None):  # both: the field at fault is k; neither: no field
        raise InputError(
            422, "give exactly one of 'items' (score them) or 'k' (top k of the catalog)", None if k is None else "k"
        )
    if items is not None:
        if type(items) is not list:
            raise InputError(422, "items must be a list of objects", "items")
        if not items:
            raise InputError(422, "items must not be empty", "items")
        if len(items) > settings.max_candidates:
            raise InputError(413, f"{len(items)} items; at most {settings.max_candidates} per request", "items")
        return query, items, 0
    if type(k) is not int:  # Jackson's and RapidJSON's 3.0 is 3 (``whole_number``); true, "3" and 1.5 are not
        k = whole_number(k)
    if k is None:  # 10**30 too: a JSON integer beyond 64 bits is read as a float, whole only up to 2**53
        raise InputError(422, f"k must be an integer in 1..{settings.max_top_k}", "k")
    if not 1 <= k <= settings.max_top_k:
        raise InputError(422, f"k must be in 1..{settings.max_top_k}, not {k}", "k")
    return query, None, k


def _encode(
    encoder: FeatureEncoder, rows: list[Any], where: str, settings: Settings, clipped: Counter
) -> dict[str, np.ndarray]:
    """The tower's inputs for ``rows`` (the query is one row); errors name ``where``'s field."""
    spec = encoder.spec
    try:
        columns = gather_columns(rows, {}, frozenset(f.name for f in spec.features), settings.max_string_chars)
        check_kinds(columns, {f.name: f.kind for f in spec.features})  # names the row of a value it refuses
    except InputError as error:
        tower = "query tower" if where == "query" else "item tower"
        message = error.message.replace("served models", tower).replace("candidate feature", "feature")
        raise InputError(error.status, message, _path(error.field, where)) from None
    for feature in spec.features:
        column = columns.get(feature.name)
        if feature.required and (column is None or None in column):
            index = 0 if column is None else column.index(None)
            raise InputError(422, f"feature {feature.name!r} is required but missing", _row(where, index, feature.name))
    try:
        return encoder.encode(columns, len(rows), clipped).as_inputs()
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
