"""The scoring hot path: request bytes -> encoded features -> model outputs -> response bytes.

The body is parsed with orjson and checked by hand, without a pydantic object per candidate (those
cost about three times the throughput). Features are gathered into one column per name: context
values are scalars the encoder broadcasts, candidate values become lists with ``None`` where a
candidate omits the feature. Each role model encodes the columns with its own feature spec.

The steps are separate functions: ``score`` = ``render(prepare(...), run(...))`` runs the models
directly; the route runs ``render(prepare(...), await infer(...))``, which goes through each model's
dynamic batcher (service/batching.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from common.encoder import FLOAT32_LIMIT, FeatureError
from common.features import Feature
from service.errors import InputError, ModelUnavailable
from service.json_body import load_object
from service.model_loader import LoadedModel
from service.registry import ServingModels
from service.settings import Settings

BODY_KEYS = frozenset({"context", "candidates"})
_NUMBERS = (int, float)  # exact types: bool is rejected separately


@dataclass(frozen=True)
class PreparedRequest:
    """A validated, encoded request: what a model run needs and what the response names."""

    n_candidates: int
    ctr: LoadedModel
    ctcvr: LoadedModel
    inputs: dict[str, dict[str, np.ndarray]]  # model name -> encoded inputs

    @property
    def models(self) -> tuple[LoadedModel, ...]:
        return (self.ctr,) if self.ctr is self.ctcvr else (self.ctr, self.ctcvr)


def score(body: bytes, models: ServingModels, settings: Settings) -> bytes:
    """The response body for a request body; raises ApiError for anything the client must fix."""
    prepared = prepare(body, models, settings)
    return render(prepared, run(prepared))


def prepare(body: bytes, models: ServingModels, settings: Settings) -> PreparedRequest:
    ctr, ctcvr = role_models(models)
    context, candidates = parse_body(body, settings.max_candidates)
    role = (ctr,) if ctr is ctcvr else (ctr, ctcvr)
    known = frozenset().union(*(m.feature_names for m in role))
    _check_context(context, known, settings.max_string_chars)
    columns = gather_columns(candidates, context, known, settings.max_string_chars)
    inputs = {}
    for model in role:
        _check_required(model, context, columns)
        inputs[model.name] = encode(model, context, columns, len(candidates))
    return PreparedRequest(len(candidates), ctr, ctcvr, inputs)


def run(prepared: PreparedRequest) -> dict[str, dict[str, np.ndarray]]:
    """Model name -> its outputs; one run per distinct model."""
    return {model.name: model.run(prepared.inputs[model.name]) for model in prepared.models}


async def infer(prepared: PreparedRequest, models: ServingModels, deadline: float) -> dict[str, dict[str, np.ndarray]]:
    """``run`` through each model's batcher (concurrently when the roles use two models)."""
    n = prepared.n_candidates
    if len(prepared.models) == 1:
        return {
            prepared.ctr.name: await run_model(models, prepared.ctr, prepared.inputs[prepared.ctr.name], n, deadline)
        }
    results = await asyncio.gather(
        *(run_model(models, model, prepared.inputs[model.name], n, deadline) for model in prepared.models)
    )
    return {model.name: result for model, result in zip(prepared.models, results, strict=True)}


async def run_model(
    models: ServingModels, model: LoadedModel, inputs: dict[str, np.ndarray], n_items: int, deadline: float
) -> dict[str, np.ndarray]:
    """One model's outputs for encoded inputs, through its batcher."""
    batcher = models.batcher(model)
    if batcher is None:  # a snapshot built without batchers (tests): run alone off the loop
        return await asyncio.to_thread(model.run, inputs)
    return await batcher.submit(inputs, n_items, deadline)


def render(prepared: PreparedRequest, outputs: dict[str, dict[str, np.ndarray]]) -> bytes:
    pctr = outputs[prepared.ctr.name]["pctr"].astype(np.float64)
    pctcvr = outputs[prepared.ctcvr.name]["pctcvr"].astype(np.float64)
    pcvr = conversion_rate(pctr, pctcvr)
    scores = [
        {"pctr": a, "pctcvr": b, "pcvr": c}
        for a, b, c in zip(pctr.tolist(), pctcvr.tolist(), pcvr.tolist(), strict=True)
    ]
    return orjson.dumps(
        {
            "scores": scores,
            "models": {
                "ctr": {"name": prepared.ctr.name, "version": prepared.ctr.version},
                "ctcvr": {"name": prepared.ctcvr.name, "version": prepared.ctcvr.version},
            },
        }
    )


def conversion_rate(pctr: np.ndarray, pctcvr: np.ndarray) -> np.ndarray:
    """pCVR = pCTCVR / pCTR clipped to [0, 1] (ESMM's division identity); 0 where pCTR is 0."""
    ratio = np.divide(pctcvr, pctr, out=np.zeros_like(pctcvr), where=pctr > 0)
    return np.clip(ratio, 0.0, 1.0)


def role_models(models: ServingModels) -> tuple[LoadedModel, LoadedModel]:
    ctr, ctcvr = models.for_role("ctr"), models.for_role("ctcvr")
    if ctr is None or ctcvr is None:
        reasons = "; ".join(f"model {name!r}: {why}" for name, why in models.unavailable().items())
        raise ModelUnavailable(f"not ready: {reasons}")
    return ctr, ctcvr


# -- parsing and validation -------------------------------------------------------------------------


def parse_body(body: bytes, max_candidates: int) -> tuple[dict[str, Any], list[Any]]:
    """The request's context object and candidate list, structurally checked."""
    data = load_object(body, BODY_KEYS, "'candidates' (and optionally 'context')")
    context = data.get("context")
    if context is None:
        context = {}
    elif type(context) is not dict:
        raise InputError(422, "context must be an object of feature values", "context")
    if "candidates" not in data:
        raise InputError(422, "candidates is required", "candidates")
    candidates = data["candidates"]
    if type(candidates) is not list:
        raise InputError(422, "candidates must be a list of objects", "candidates")
    if not candidates:
        raise InputError(422, "candidates must not be empty", "candidates")
    if len(candidates) > max_candidates:
        raise InputError(413, f"{len(candidates)} candidates; at most {max_candidates} per request", "candidates")
    return context, candidates


def _value_problem(value: Any, max_chars: int) -> str | None:
    """Why a raw feature value is unacceptable whatever its feature, or None."""
    kind = type(value)
    if kind is str:
        return f"is longer than {max_chars} characters" if len(value) > max_chars else None
    if kind is int or kind is float or value is None:
        return None
    if kind is bool:
        return "must be a string or a number, not a boolean"
    return f"must be a string, a number or null, not {'a list' if kind is list else 'an object'}"


def _check_context(context: dict[str, Any], known: frozenset[str], max_chars: int) -> None:
    for name, value in context.items():
        if name not in known:
            raise InputError(422, f"{name!r} is not a feature of the served models", f"context.{name}")
        problem = _value_problem(value, max_chars)
        if problem:
            raise InputError(422, f"context feature {name!r} {problem}", f"context.{name}")


def gather_columns(
    candidates: list[Any], context: dict[str, Any], known: frozenset[str], max_chars: int
) -> dict[str, list[Any]]:
    """One list per candidate feature name, ``None`` where a candidate omits it."""
    n = len(candidates)
    columns: dict[str, list[Any]] = {}
    for i, candidate in enumerate(candidates):
        if type(candidate) is not dict:
            raise InputError(422, "each candidate must be an object of feature values", f"candidates[{i}]")
        for name, value in candidate.items():
            column = columns.get(name)
            if column is None:
                if name not in known:
                    raise InputError(422, f"{name!r} is not a feature of the served models", f"candidates[{i}].{name}")
                if name in context:
                    raise InputError(
                        422, f"{name!r} is given both in context and in candidates", f"candidates[{i}].{name}"
                    )
                column = columns[name] = [None] * n
            kind = type(value)
            if kind is not float and kind is not int and (kind is not str or len(value) > max_chars):
                problem = _value_problem(value, max_chars)
                if problem:
                    raise InputError(422, f"candidate feature {name!r} {problem}", f"candidates[{i}].{name}")
            column[i] = value
    return columns


def _check_required(model: LoadedModel, context: dict[str, Any], columns: dict[str, list[Any]]) -> None:
    """A required feature must have a non-null value for every candidate."""
    for feature in model.required_features:
        name = feature.name
        if name in context:
            if context[name] is None:
                raise InputError(422, f"feature {name!r} is required but null", f"context.{name}")
        elif name in columns:
            column = columns[name]
            if None in column:
                index = column.index(None)
                raise InputError(422, f"feature {name!r} is required but missing", f"candidates[{index}].{name}")
        else:
            where = f"context.{name}" if feature.side == "context" else f"candidates[0].{name}"
            raise InputError(422, f"feature {name!r} is required but missing", where)


def encode(
    model: LoadedModel, context: dict[str, Any], columns: dict[str, list[Any]], n_rows: int
) -> dict[str, np.ndarray]:
    """The model's input tensors; a value its encoder refuses is a 422 naming where it is."""
    names = model.feature_names
    selected: dict[str, Any] = {name: value for name, value in context.items() if name in names}
    selected.update((name, column) for name, column in columns.items() if name in names)
    try:
        return model.encoder.encode(selected, n_rows).as_inputs()
    except FeatureError as error:
        feature = model.manifest.feature_spec.by_name.get(error.feature)
        where = _locate(feature, context, columns) if feature else error.feature
        raise InputError(422, str(error), where) from None


def _locate(feature: Feature, context: dict[str, Any], columns: dict[str, list[Any]]) -> str:
    """The request path of the first value of ``feature`` that its encoder cannot take."""
    name = feature.name
    if name in context:
        return f"context.{name}"
    for i, value in enumerate(columns.get(name, ())):
        if not _encodable(feature, value):
            return f"candidates[{i}].{name}"
    return f"context.{name}" if feature.side == "context" and name not in columns else f"candidates[*].{name}"


def _encodable(feature: Feature, value: Any) -> bool:
    if value is None:
        return True
    if feature.kind == "categorical":
        return type(value) is str or type(value) is int
    return type(value) in _NUMBERS and abs(value) <= FLOAT32_LIMIT  # False for inf and nan too
