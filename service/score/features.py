"""A scoring request's feature values: gathered into columns, checked, and encoded (with their batch
when the request is small).

Features are gathered into one column per name: context values are scalars the encoder broadcasts,
candidate values become lists with ``None`` where a candidate omits the feature. Every value is checked
to be one its feature's encoder takes: a column at a time in C (``accepted_columns``: the set of a
column's types, its longest string, its largest magnitude), and value by value only to name what is
refused, so that what the checks accept always encodes. ``/v1/score`` checks every value of a request
on the event loop; a small request joins its model's batcher as ``FeatureRows``, and the batch worker
encodes the small requests of a batch with one ``FeatureEncoder.encode`` call (its cost is mostly per
call, not per row, so one call per batch is what lets dynamic batching take the model's whole cost out
of small requests); a request of ``ALONE_ROWS`` candidates or more, which gains nothing from that, is
encoded with one call of its own (its context values looked up once) where it was checked
(score/pipeline.py), and joins the batcher as tensors.

What a value must be, and the words refusing it, are the encoder's (common/encoder.py: a required feature
present, a text of at most CTR_MAX_STRING_CHARS characters, ``whole_number``, float32's range): the encoder
refuses the same values for the same reasons, and the service builds its encoders with its own
CTR_MAX_STRING_CHARS. They are checked here too, before batching, because a small request is encoded by its
batch worker together with others: a value refused there would fail the whole batch, and the 422 could not
name the request's field. ``ctr score`` checks a file's rows here, request by request (training/offline_scores.py).

Encoding rows together gives exactly the tensors encoding each request alone would (every value is
encoded on its own: hashing and standardising are per value; a context value is repeated over its
request's candidates, which is what the encoder's broadcast does), so ``encode_slices`` of a batch is
the concatenation of the requests' own encodings (tests/service/test_feature_rows.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from common.encoder import (
    FLOAT32_LIMIT,
    NOT_NUMERIC,
    OUT_OF_RANGE,
    REQUIRED_MISSING,
    FeatureEncoder,
    FeatureError,
    not_categorical,
    too_long,
    whole_number,
)
from common.features import Feature
from common.numeric_transform import in_domain, outside_domain
from service.http.errors import InputError, echoed, echoed_key

if TYPE_CHECKING:
    from service.models.scoring_model import ScoringModel

_CATEGORICAL_TYPES = frozenset({str, int})  # exact types: bool is rejected before these checks
_NUMERIC_TYPES = frozenset({int, float})
_NONE_TYPE = frozenset({type(None)})
# Requests of this many rows and more are encoded alone, where they are checked (score/pipeline.py), or,
# in a batch averaging this many rows a request, one by one and stacked: each request's context is then
# looked up once, not once per row; smaller ones are encoded together, with their batch, in one call
ALONE_ROWS = 32
_CATEGORICAL_OR_NONE = _CATEGORICAL_TYPES | _NONE_TYPE
_NUMERIC_OR_NONE = _NUMERIC_TYPES | _NONE_TYPE
_DICT_TYPE = frozenset({dict})


@dataclass(frozen=True, eq=False)
class FeatureRows:
    """``n_rows`` candidates: context values shared by all of them, candidate values one per row.

    Every value has been checked to be one its feature's encoder takes (the checks below), so encoding
    these rows cannot fail on the client's account.
    """

    context: dict[str, Any]  # feature name -> one value for every row
    columns: dict[str, list[Any]]  # feature name -> n_rows values, None where a candidate omits it
    n_rows: int


def encode_slices(
    encoder: FeatureEncoder,
    names: Collection[str],
    parts: Sequence[tuple[FeatureRows, int, int]],
    clipped: Counter | None = None,
) -> dict[str, np.ndarray]:
    """The input tensors of rows ``start:stop`` of each part, in order: small parts (1-candidate
    requests) by one encoder call for the whole batch, large ones by one call each (their context looked
    up once, then broadcast), stacked. The values clipped to the training range are counted in ``clipped``
    if given, else in the encoder's own count (``FeatureEncoder.encode``).

    ``names`` are the encoder's features. A feature a request does not give is ``None`` in its rows,
    which encodes as the feature's default, as leaving the feature out would (a required feature is
    always given: the checks before batching see to that).
    """
    n_rows = sum(stop - start for _, start, stop in parts)
    if len(parts) == 1 or n_rows >= ALONE_ROWS * len(parts):  # each request alone, its context broadcast
        encoded = [_encode_part(encoder, names, *part, clipped) for part in parts]
        if len(encoded) == 1:
            return encoded[0]
        return {name: np.concatenate([inputs[name] for inputs in encoded]) for name in encoded[0]}
    columns: dict[str, list[Any]]
    if n_rows == len(parts):  # one row from each part (1-candidate requests): one pick per value
        picks = [(rows.context, rows.columns, start) for rows, start, _ in parts]
        columns = {
            name: [c[name] if name in c else (o[name][i] if name in o else None) for c, o, i in picks] for name in names
        }
        return encoder.encode(columns, n_rows, clipped).as_inputs()
    columns = {name: [] for name in names}
    for rows, start, stop in parts:  # a request's context value repeats over its rows; absent is None
        context, own = rows.context, rows.columns
        for name, column in columns.items():
            if name in context:
                column += [context[name]] * (stop - start)
            else:
                values = own.get(name)
                column += values[start:stop] if values is not None else [None] * (stop - start)
    return encoder.encode(columns, n_rows, clipped).as_inputs()


def _encode_part(
    encoder: FeatureEncoder, names: Collection[str], rows: FeatureRows, start: int, stop: int, clipped: Counter | None
) -> dict[str, np.ndarray]:
    """Rows ``start:stop`` of one request, its context values kept scalar (the encoder broadcasts them)."""
    selected = {name: value for name, value in rows.context.items() if name in names}
    whole = start == 0 and stop == rows.n_rows
    for name, column in rows.columns.items():
        if name in names:
            selected[name] = column if whole else column[start:stop]
    return encoder.encode(selected, stop - start, clipped).as_inputs()


# -- gathering and checking -----------------------------------------------------------------------


def _value_problem(value: Any, max_chars: int) -> str | None:
    """Why a raw feature value is unacceptable whatever its feature, or None."""
    kind = type(value)
    if kind is str:
        return too_long(max_chars) if len(value) > max_chars else None
    if kind is int or kind is float or value is None:
        return None
    if kind is bool:
        return "must be a string or a number, not a boolean"
    return f"must be a string, a number or null, not {'a list' if kind is list else 'an object'}"


def _check_context(context: dict[str, Any], kinds: dict[str, str], max_chars: int) -> None:
    for name, value in context.items():
        if name not in kinds:
            raise InputError(
                422, f"{echoed(name)} is not a feature of the served models", f"context.{echoed_key(name)}"
            )
        kind = kinds[name]
        if _plain_value_accepted(value, kind, max_chars):
            continue  # the common cases, without the calls below
        problem = _value_problem(value, max_chars)
        if problem:
            raise InputError(422, f"context feature {name!r} {problem}", f"context.{name}")
        if not _encodable(kind, value):
            context[name] = _category_of(name, kind, value, f"context.{name}")


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
                    raise InputError(
                        422,
                        f"{echoed(name)} is not a feature of the served models",
                        f"candidates[{i}].{echoed_key(name)}",
                    )
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


def accepted_columns(
    candidates: list[Any], context: dict[str, Any], kinds: dict[str, str], max_chars: int
) -> dict[str, list[Any]] | None:
    """``gather_columns``'s columns when every candidate value passes its checks (and ``check_kinds``'),
    found a column at a time in C (the set of the keys, of a column's types; its longest string, its
    largest magnitude); None as soon as anything would be refused, or is unusual, so that the
    value-by-value checks find and name it. Never accepts what they refuse (a property test checks)."""
    n = len(candidates)
    if n == 1:  # one candidate: value by value, no column machinery
        return _one_candidate_accepted(candidates[0], context, kinds, max_chars)
    if not _DICT_TYPE.issuperset(map(type, candidates)):
        return None
    names = set().union(*candidates)
    if not names.issubset(kinds) or not names.isdisjoint(context):
        return None
    if not names:
        columns = {}
    elif len(names) > 1 and len(candidates[0]) == len(names) and len(set(map(len, candidates))) == 1:
        ordered = list(names)  # every candidate gives every name: one tuple per candidate, transposed
        columns = dict(zip(ordered, map(list, zip(*map(itemgetter(*ordered), candidates), strict=True)), strict=True))
    else:
        columns = {name: list(map(dict.get, candidates, repeat(name, n))) for name in names}
    for name, column in columns.items():
        if not _column_accepted(column, kinds[name], max_chars):
            return None
    return columns


def _one_candidate_accepted(
    candidate: Any, context: dict[str, Any], kinds: dict[str, str], max_chars: int
) -> dict[str, list[Any]] | None:
    if type(candidate) is not dict:
        return None
    columns = {}
    for name, value in candidate.items():
        kind = kinds.get(name)
        if kind is None or name in context or not _plain_value_accepted(value, kind, max_chars):
            return None
        columns[name] = [value]
    return columns


def _plain_value_accepted(value: Any, kind: str, max_chars: int) -> bool:
    """Whether one value passes every check for a feature of ``kind`` (``_value_problem``, ``_encodable``)."""
    if value is None:
        return True
    value_type = type(value)
    if kind == "categorical":
        return value_type is int or (value_type is str and len(value) <= max_chars)
    return kind == "numeric" and (value_type is float or value_type is int) and abs(value) <= FLOAT32_LIMIT


def _column_accepted(column: list[Any], kind: str, max_chars: int) -> bool:
    types = set(map(type, column))
    if kind == "categorical":
        if not types <= _CATEGORICAL_OR_NONE:
            return False
        if str not in types:
            return True
        strings = column if len(types) == 1 else [v for v in column if type(v) is str]
        return max(map(len, strings)) <= max_chars
    if kind == "numeric":
        if not types <= _NUMERIC_OR_NONE:
            return False
        present = column if type(None) not in types else [v for v in column if v is not None]
        return not present or max(map(abs, present)) <= FLOAT32_LIMIT
    return types <= _NONE_TYPE  # a feature the role models disagree on: only null suits both


def _check_required(model: ScoringModel, context: dict[str, Any], columns: dict[str, list[Any]]) -> None:
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
                raise InputError(422, f"feature {name!r} {REQUIRED_MISSING}", f"candidates[{index}].{name}")
        else:
            where = f"context.{name}" if feature.side == "context" else f"candidates[0].{name}"
            raise InputError(422, f"feature {name!r} {REQUIRED_MISSING}", where)


def check_kinds(columns: dict[str, list[Any]], kinds: dict[str, str]) -> None:
    """Every candidate value is one its feature's encoder takes: checked a column at a time, in C where
    possible (a set of the column's types, the largest magnitude), so batches encode without errors; a
    categorical feature's whole-number float is replaced by its integer (``whole_number``)."""
    for name, column in columns.items():
        kind = kinds[name]
        if len(column) == 1:  # one candidate: no column-wise machinery
            value = column[0]
            if value is not None and not _encodable(kind, value):
                column[0] = _category_of(name, kind, value, f"candidates[0].{name}")
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
                column[i] = _category_of(name, kind, value, f"candidates[{i}].{name}")


def _category_of(name: str, kind: str, value: Any, field: str) -> int:
    """The integer a value ``_encodable`` refuses stands for (``whole_number``), or the 422 naming ``field``."""
    whole = whole_number(value) if kind == "categorical" else None
    if whole is None:
        raise InputError(422, _kind_message(name, kind, value), field)
    return whole


def _encodable(kind: str, value: Any) -> bool:
    """Whether a non-null value of a valid JSON type is one a feature of ``kind`` can encode."""
    if kind == "categorical":
        return type(value) in _CATEGORICAL_TYPES
    if kind == "numeric":
        return type(value) in _NUMERIC_TYPES and abs(value) <= FLOAT32_LIMIT
    return False


def _kind_message(name: str, kind: str, value: Any) -> str:
    if kind == "categorical":
        reason = not_categorical(value)
    elif kind == "numeric":
        reason = NOT_NUMERIC if type(value) is str else OUT_OF_RANGE
    else:
        reason = "is categorical for one served model and numeric for the other; only null suits both"
    return str(FeatureError(name, reason))


def checked_rows(
    context: dict[str, Any],
    candidates: list[Any],
    models: Sequence[ScoringModel],
    kinds: dict[str, str],
    max_chars: int,
) -> FeatureRows:
    """A request's feature rows, after checking every value against ``kinds`` (feature -> kind, the
    role models' merged) and each model's required features; InputError names the first problem."""
    _check_context(context, kinds, max_chars)
    columns = accepted_columns(candidates, context, kinds, max_chars)
    if columns is None:  # something to refuse (or unusual): the value-by-value checks name it
        columns = gather_columns(candidates, context, kinds, max_chars)
        check_kinds(columns, kinds)
    for model in models:
        _check_required(model, context, columns)
        if model.transformed_features:  # none, in most models: this test is the whole cost
            _check_domains(model.transformed_features, context, columns)
    return FeatureRows(context, columns, len(candidates))


def _check_domains(features: tuple[Feature, ...], context: dict[str, Any], columns: dict[str, list[Any]]) -> None:
    """Every value of a feature with a transform (``log1p``: counts) is one the transform takes; the 422 names
    the first that is not, with the rule, as the encoder would refuse it (common/numeric_transform.py). The
    values are numbers already (``check_kinds``)."""
    for feature in features:
        name, transform = feature.name, feature.transform
        if name in context:
            value = context[name]
            if value is not None and not in_domain(transform, value):
                raise InputError(422, str(FeatureError(name, outside_domain(transform))), f"context.{name}")
        elif name in columns:
            column = columns[name]
            present = [v for v in column if v is not None]
            if present and not in_domain(transform, min(present)):
                index = next(i for i, v in enumerate(column) if v is not None and not in_domain(transform, v))
                raise InputError(422, str(FeatureError(name, outside_domain(transform))), f"candidates[{index}].{name}")
