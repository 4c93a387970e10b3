"""The bodies a call sends: its features checked (NaN and infinity refused, a numpy float sent as the
float64 it holds, anything but a mapping refused) and encoded as JSON, a value JSON cannot carry refused
naming its feature."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from clients.client.errors import shortened

FeatureValue = str | int | float | None
Features = Mapping[str, FeatureValue]


def checked_features(where: str, features: Features, index: int | None = None) -> dict[str, FeatureValue]:
    """``features`` as a dict, refusing NaN and infinity (ValueError naming ``where[index].name``): the JSON
    encoder would send them as null, which the service takes as the feature left out. The common values
    (text, integers, finite floats) pass on a type check; the name is written only for an error. A numpy float
    is replaced by the float64 it holds: orjson writes a float32 in its shortest float32 digits (62.51054 for
    62.51054000854492), which the service reads as another number, one float32 step off ``ctr score``. Anything
    but a mapping is a TypeError naming ``where[index]`` (``dict("a7")`` raised a ValueError about update
    sequences)."""
    if not isinstance(features, Mapping) and not hasattr(features, "keys"):  # dict() takes a pandas Series too
        named = where if index is None else f"{where}[{index}]"
        raise TypeError(f"{named} must be a mapping of feature names to values, not {type(features).__name__}")
    values = dict(features)
    for name, value in values.items():
        if value is None or type(value) is str or type(value) is int:
            continue
        if type(value) is float and value - value == 0.0:  # finite: NaN and infinity give NaN
            continue
        try:
            finite = math.isfinite(value)
        except TypeError:
            continue  # not a number: the encoder names its type
        if not finite:
            named = where if index is None else f"{where}[{index}]"
            raise ValueError(
                f"{named}.{name} is {value}: JSON has no NaN or infinity; send a finite number, or leave an "
                "optional feature out to get its default"
            )
        if isinstance(value, np.floating):
            values[name] = float(value)
    return values


def checked_list(where: str, rows: Sequence[Features]) -> list[dict[str, FeatureValue]]:
    """``rows`` (one mapping of features a candidate or item), each checked; a single mapping, text or anything
    not iterable is a TypeError naming ``where``: a dict passed for the list was read as its keys ("candidates[0]
    must be a mapping ..., not str") and None as "'NoneType' object is not iterable"."""
    if isinstance(rows, (Mapping, str, bytes)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"{where} must be a list of mappings of feature names to values, not {type(rows).__name__}")
    return [checked_features(where, row, i) for i, row in enumerate(rows)]


def score_body(
    context: Features, candidates: Sequence[Features], versions: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """A ``/v1/score`` body; ``versions`` (model name -> served version) pins the versions that score it."""
    body = {"context": checked_features("context", context), "candidates": checked_list("candidates", candidates)}
    if versions is None:
        return body
    if not isinstance(versions, Mapping):  # dict([1]) said "cannot convert dictionary update sequence element #0"
        raise TypeError(f"versions must be a mapping of model names to versions, not {type(versions).__name__}")
    return body | {"versions": dict(versions)}


def similarity_body(query: Features, items: Sequence[Features]) -> dict[str, Any]:
    return {"query": checked_features("query", query), "items": checked_list("items", items)}


def encode(body: Any) -> bytes:
    """``body`` as JSON; a feature value JSON cannot carry is refused naming it (``_unsendable``), looked for only
    once orjson refused the body, so that a call pays no check per value for it."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError as error:
        refused = _unsendable(body)
        if refused is None:
            raise
        raise refused from error


def _unsendable(body: Any) -> Exception | None:
    """The error naming the first feature of ``body`` (``where.name``, ``where[index].name``, as
    ``checked_features`` names one) whose value or name orjson cannot write: text holding a lone UTF-16
    surrogate, a ValueError (it is no Unicode, and orjson said "str is not valid UTF-8" naming nothing); a value
    of a type JSON has none of (bytes: "Type is not JSON serializable: bytes"), a TypeError. None where no
    feature is at fault."""
    if not isinstance(body, Mapping):
        return None
    for where, listed in body.items():  # context, candidates, query, items (versions too)
        rows = enumerate(listed) if isinstance(listed, list) else [(None, listed)]
        for index, features in rows:
            if not isinstance(features, Mapping):
                continue
            named = where if index is None else f"{where}[{index}]"
            for name, value in features.items():
                if not _writable(value):
                    return _refused_value(f"{named}.{name}", value)
                if not _writable(name):
                    return ValueError(f"{named} has a feature named {name!r}, which JSON cannot carry: {_why(name)}")
    return None


def _writable(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return False
    return True


def _refused_value(named: str, value: Any) -> Exception:
    if isinstance(value, str):
        return ValueError(f"{named} is {shortened(repr(value))}, which JSON cannot carry: {_why(value)}")
    decode = "; decode bytes to text" if isinstance(value, bytes | bytearray) else ""
    return TypeError(
        f"{named} is {type(value).__name__} ({shortened(repr(value))}), which JSON cannot carry: send text, an "
        f"integer or a finite number{decode}"
    )


def _why(text: str) -> str:
    """Why orjson refuses a str: the lone UTF-16 surrogate it holds (JavaScript's text cut inside an emoji)."""
    surrogate = next((c for c in text if "\ud800" <= c <= "\udfff"), None)
    if surrogate is None:
        return "not valid Unicode"
    return (
        f"it holds U+{ord(surrogate):04X}, half of a UTF-16 surrogate pair, which is no character; send the "
        "character whole, or U+FFFD in its place"
    )
