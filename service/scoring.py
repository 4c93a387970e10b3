"""The scoring hot path: request bytes -> encoded features -> model outputs -> response bytes.

The body is parsed with orjson and checked by hand, without a pydantic object per candidate (those
cost about three times the throughput). Features are gathered into one column per name: context
values are scalars the encoder broadcasts, candidate values become lists with ``None`` where a
candidate omits the feature. Each role model encodes the columns with its own feature spec.

``prepare`` checks everything a client can get wrong, so that what it accepts always encodes; the rows
stay raw (``FeatureRows``) and each model's batcher encodes them together with the rest of its batch.
The steps are separate functions: ``respond`` runs ``render(prepare(...), await outcomes(enqueue(...)))``
through each model's dynamic batcher (service/batching.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from starlette.types import Receive

from common.encoder import FLOAT32_LIMIT, NOT_CATEGORICAL, NOT_NUMERIC, OUT_OF_RANGE, FeatureError
from service.batching import Batcher, Work
from service.disconnect import DisconnectWatch
from service.errors import ClientDisconnected, InputError, ModelUnavailable
from service.feature_rows import FeatureRows
from service.json_body import INLINE_BODY_BYTES, load_object
from service.model_loader import LoadedModel
from service.registry import ServingModels
from service.settings import Settings

BODY_KEYS = frozenset({"context", "candidates"})
_CATEGORICAL_TYPES = frozenset({str, int})  # exact types: bool is rejected before these checks
_NUMERIC_TYPES = frozenset({int, float})
_NONE_TYPE = frozenset({type(None)})


@dataclass(frozen=True)
class PreparedRequest:
    """A validated request: its raw feature rows, the models that score them, what the response names."""

    n_candidates: int
    ctr: LoadedModel
    ctcvr: LoadedModel
    rows: FeatureRows  # checked; each model's batcher encodes them with its batch

    @property
    def models(self) -> tuple[LoadedModel, ...]:
        return (self.ctr,) if self.ctr is self.ctcvr else (self.ctr, self.ctcvr)

    def encoded(self, model: LoadedModel) -> dict[str, np.ndarray]:
        """The request's input tensors for one model, as its batch would encode them."""
        return model.encode([(self.rows, 0, self.n_candidates)])


async def respond(body: bytes, models: ServingModels, settings: Settings, deadline: float, receive: Receive) -> bytes:
    """The response body for a request body, through the batchers; its work is dropped if the client
    leaves (``receive`` says ``http.disconnect``). Raises ApiError for anything the client must fix."""
    if len(body) <= INLINE_BODY_BYTES:
        prepared = prepare(body, models, settings)
    else:
        prepared = await asyncio.to_thread(prepare, body, models, settings)
    inputs = [(model, prepared.rows) for model in prepared.models]
    return render(prepared, await outcomes(enqueue(models, inputs, prepared.n_candidates, deadline), receive))


def prepare(body: bytes, models: ServingModels, settings: Settings) -> PreparedRequest:
    """Parse and check a body completely: after this, encoding and running it cannot fail on its account."""
    ctr, ctcvr = role_models(models)
    context, candidates = parse_body(body, settings.max_candidates)
    kinds = models.role_feature_kinds  # computed once per served snapshot
    _check_context(context, kinds, settings.max_string_chars)
    columns = gather_columns(candidates, context, kinds, settings.max_string_chars)
    _check_kinds(columns, kinds)
    _check_required(ctr, context, columns)
    if ctcvr is not ctr:
        _check_required(ctcvr, context, columns)
    return PreparedRequest(len(candidates), ctr, ctcvr, FeatureRows(context, columns, len(candidates)))


Queued = list[tuple[LoadedModel, Batcher, Work]]


def enqueue(
    models: ServingModels,
    inputs: list[tuple[LoadedModel, FeatureRows | dict[str, np.ndarray]]],
    n: int,
    deadline: float,
) -> Queued:
    """Each model's inputs queued in its batcher, all before any is awaited, so their batches form at once."""
    queued: Queued = []
    try:
        for model, model_inputs in inputs:
            batcher = models.batcher(model)
            if batcher is None:
                raise ModelUnavailable(f"model {model.name!r} version {model.version} is no longer served")
            queued.append((model, batcher, batcher.enqueue(model_inputs, n, deadline)))
    except BaseException:
        _abandon(queued)
        raise
    return queued


async def outcomes(queued: Queued, receive: Receive) -> dict[str, dict[str, np.ndarray]]:
    """Model name -> outputs, once every queued run is done. If the client disconnects meanwhile, its
    work is abandoned (rows not yet batched never run) and ClientDisconnected is raised."""
    watch = DisconnectWatch(receive, lambda: _abandon(queued))
    results = {}
    try:
        for model, _, work in queued:
            results[model.name] = await work.future  # type: ignore[misc]
    except asyncio.CancelledError:
        _abandon(queued)
        task = asyncio.current_task()
        if watch.gone and not (task is not None and task.cancelling()):  # not a cancellation of our own
            raise ClientDisconnected() from None
        raise
    except BaseException:
        _abandon(queued)
        raise
    finally:
        watch.stop()
    return results


def _abandon(queued: Queued) -> None:
    for _, batcher, work in queued:
        batcher.abandon(work)  # a settled one is left as it is


def render(prepared: PreparedRequest, outputs: dict[str, dict[str, np.ndarray]]) -> bytes:
    pctr, pctcvr, pcvr = served_probabilities(outputs[prepared.ctr.name], outputs[prepared.ctcvr.name])
    scores = [{"pctr": a, "pctcvr": b, "pcvr": c} for a, b, c in zip(pctr, pctcvr, pcvr, strict=True)]
    return orjson.dumps(
        {
            "scores": scores,
            "models": {
                "ctr": {"name": prepared.ctr.name, "version": prepared.ctr.version},
                "ctcvr": {"name": prepared.ctcvr.name, "version": prepared.ctcvr.version},
            },
        }
    )


def served_probabilities(
    ctr_outputs: dict[str, np.ndarray], ctcvr_outputs: dict[str, np.ndarray]
) -> tuple[list[float], list[float], list[float]]:
    """(pctr, pctcvr, pcvr) per candidate, all for one slot (the role models' regimes are checked equal).

    pctr is the ctr model's; pcvr is the ctcvr model's own pCVR output, so it ranks and calibrates as
    that model learned it, and pctcvr = pctr * pcvr, so the identity holds exactly between the numbers
    served. A ctcvr model without a pcvr output gives pctcvr, and pcvr = pctcvr / pctr (clipped)."""
    pctr = ctr_outputs["pctr"].tolist()
    if "pcvr" not in ctcvr_outputs:
        pctcvr = ctcvr_outputs["pctcvr"].tolist()
        return pctr, pctcvr, conversion_rates(pctr, pctcvr)
    pcvr = ctcvr_outputs["pcvr"].tolist()
    return pctr, [a * c for a, c in zip(pctr, pcvr, strict=True)], pcvr


def conversion_rates(pctr: list[float], pctcvr: list[float]) -> list[float]:
    """pCVR = pCTCVR / pCTR clipped to [0, 1] (ESMM's division identity); 0 where pCTR is 0."""
    return [min(max(b / a, 0.0), 1.0) if a > 0.0 else 0.0 for a, b in zip(pctr, pctcvr, strict=True)]


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


def _check_context(context: dict[str, Any], kinds: dict[str, str], max_chars: int) -> None:
    for name, value in context.items():
        if name not in kinds:
            raise InputError(422, f"{name!r} is not a feature of the served models", f"context.{name}")
        kind = kinds[name]
        if value is None or (type(value) is str and kind == "categorical" and len(value) <= max_chars):
            continue  # the common cases, without the calls below
        problem = _value_problem(value, max_chars)
        if problem:
            raise InputError(422, f"context feature {name!r} {problem}", f"context.{name}")
        if not _encodable(kind, value):
            raise InputError(422, _kind_message(name, kind, value), f"context.{name}")


def gather_columns(
    candidates: list[Any], context: dict[str, Any], known: Collection[str], max_chars: int
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


def _check_kinds(columns: dict[str, list[Any]], kinds: dict[str, str]) -> None:
    """Every candidate value is one its feature's encoder takes: checked a column at a time, in C where
    possible (a set of the column's types, the largest magnitude), so batches encode without errors."""
    for name, column in columns.items():
        kind = kinds[name]
        if len(column) == 1:  # one candidate: no column-wise machinery
            value = column[0]
            if value is not None and not _encodable(kind, value):
                raise InputError(422, _kind_message(name, kind, value), f"candidates[0].{name}")
            continue
        given = set(map(type, column))
        types = given - _NONE_TYPE
        if kind == "categorical" and types <= _CATEGORICAL_TYPES:
            continue
        if kind == "numeric" and types <= _NUMERIC_TYPES:
            present = column if types == given else [v for v in column if v is not None]
            if not present or max(map(abs, present)) <= FLOAT32_LIMIT:
                continue
        for i, value in enumerate(column):
            if value is not None and not _encodable(kind, value):
                raise InputError(422, _kind_message(name, kind, value), f"candidates[{i}].{name}")


def _encodable(kind: str, value: Any) -> bool:
    """Whether a non-null value of a valid JSON type is one a feature of ``kind`` can encode."""
    if kind == "categorical":
        return type(value) in _CATEGORICAL_TYPES
    if kind == "numeric":
        return type(value) in _NUMERIC_TYPES and abs(value) <= FLOAT32_LIMIT
    return False


def _kind_message(name: str, kind: str, value: Any) -> str:
    if kind == "categorical":
        reason = NOT_CATEGORICAL
    elif kind == "numeric":
        reason = NOT_NUMERIC if type(value) is str else OUT_OF_RANGE
    else:
        reason = "is categorical for one served model and numeric for the other; only null suits both"
    return str(FeatureError(name, reason))
