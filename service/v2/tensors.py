"""Input tensors of the Open Inference Protocol, checked once whatever carried them.

A tensor arrives as JSON numbers (REST), as raw little-endian bytes (REST's binary tensor data
extension, gRPC's ``raw_input_contents``) or as typed protobuf lists (gRPC's ``contents``). Each path
checks the declared datatype and ``[rows, width]`` shape first, then the size of what was sent against
that shape *before* numpy sees it (so no body can make the service allocate for a shape it does not
hold), and hands the array to ``check_request``, which applies every check ONNX Runtime would
otherwise fail on: names, widths, one batch size, the row limit, each categorical id inside its
feature's bucket range, floats finite and within ±``STANDARDISED_LIMIT`` (no standardised value is
further: 3e38 made the network answer NaN). Every refusal is a 4xx ``InputError`` naming the field,
and a refusal of one input's tensor names that input in its message too (``for_input``): tritonclient
shows a client the message alone. A name or datatype a client sent is quoted cut (``echoed``): a 100 KB
datatype was a 100 KB answer.

The numeric input of a checked request is clipped to each feature's training range
(``clipped_to_training_range``, as the request goes to its batcher: v2/serving.py), as ``/v1/score``'s
encoding clips a raw value (``FeatureEncoder``'s standardised bounds, common/encoder.py): a V2 value of
-1000 or 1000 standardised units was run as sent and answered a saturated pctr (3.8e-14, 1.0), where
``/v1/score`` answers the same row's far value as the value at the edge. The values clipped are counted per
feature in ``ctr_feature_values_clipped_total`` as ``/v1/score``'s are, once the batcher took the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from common.encoder import STANDARDISED_LIMIT
from common.plural import counted
from service.http.errors import InputError, echoed
from service.models.scoring_model import ScoringModel

if TYPE_CHECKING:
    from service.batching.client import Clipped

DATATYPES = {"int64": "INT64", "float32": "FP32", "float64": "FP64"}  # numpy dtype name -> V2 datatype
WIRE_DTYPES = {"INT64": np.dtype("<i8"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}  # little-endian
# what a BYTES tensor (text ids, as a Triton user sends a string input) is told to do instead
TEXT_IDS_HINT = (
    "V2 infer takes the encoded tensors, each text id hashed to its bucket index by the client as "
    "docs/encoding.md says; or send the raw features to POST /v1/score"
)


def check_header(datatype: Any, shape: Any, dtype: str, where: str) -> tuple[int, int]:
    """(rows, width) of a tensor whose datatype must be the model's ``dtype``; 400 otherwise."""
    if datatype != DATATYPES[dtype]:
        hint = f": {TEXT_IDS_HINT}" if datatype == "BYTES" else ""
        message = f"datatype must be {DATATYPES[dtype]}, not {echoed(datatype)}{hint}"
        raise InputError(400, message, f"{where}.datatype")
    if not isinstance(shape, Sequence) or len(shape) != 2 or any(type(d) is not int or d < 0 for d in shape):
        raise InputError(400, "shape must be [rows, width] of non-negative integers", f"{where}.shape")
    if shape[0] < 1:  # said before the data is read, which would otherwise be refused for holding 0 values
        raise InputError(400, "the batch dimension must be at least 1", f"{where}.shape")
    return shape[0], shape[1]


def for_input(name: str, error: InputError) -> InputError:
    """``error``, a refusal of input ``name``'s tensor, with the input named at the head of its message."""
    return InputError(error.status, f"input {name!r}: {error.message}", error.field)


def from_bytes(raw: bytes | memoryview, datatype: str, rows: int, width: int, field: str) -> np.ndarray:
    """The tensor held by ``raw`` (row-major, little-endian); 400 naming ``field`` (where the bytes' size
    was given) unless its size is exactly the shape's."""
    dtype = WIRE_DTYPES[datatype]
    expected = rows * width * dtype.itemsize
    if len(raw) != expected:
        raise InputError(
            400,
            f"binary data of {counted(len(raw), 'byte')}; shape [{rows}, {width}] of {datatype} takes {expected}",
            field,
        )
    return np.frombuffer(raw, dtype=dtype).reshape(rows, width)


def from_numbers(values: Any, dtype: str, rows: int, width: int, where: str) -> np.ndarray:
    """The tensor held by a flat sequence of ``rows * width`` numbers (a protobuf repeated field)."""
    if len(values) != rows * width:
        raise InputError(
            400,
            f"contents hold {counted(len(values), 'value')}; shape [{rows}, {width}] takes {rows * width}",
            f"{where}.contents",
        )
    return np.asarray(values, dtype=dtype).reshape(rows, width)


def check_values(values: np.ndarray, dtype: str, where: str) -> np.ndarray:
    """Element checks of a tensor taken from numbers or bytes: finite values within ±STANDARDISED_LIMIT for
    the float input (standardised features), int64 integers."""
    if dtype != "int64" and values.size and not (np.abs(values) <= STANDARDISED_LIMIT).all():
        raise InputError(
            400,
            f"data holds a number that is not finite or past ±{STANDARDISED_LIMIT:g}: numeric inputs are standardised"
            " values, none of which lies that far (3e38 made the network answer NaN); each is clipped to its feature's"
            " training range, as /v1/score clips a raw value",
            f"{where}.data",
        )
    return values.astype(dtype, copy=False)


def check_request(tensors: dict[str, np.ndarray], where: dict[str, str], model: ScoringModel, max_rows: int) -> int:
    """The batch size of a complete set of inputs for ``model``; InputError naming what is wrong. The numeric
    input is checked, not yet clipped to the training range (``clipped_to_training_range`` does it once the
    whole request passed, so that a refused request clips and counts nothing).

    ``where`` maps each input name to its place in the request (``inputs[1]``) for the messages.
    """
    missing = sorted({t.name for t in model.manifest.inputs} - set(tensors))
    if missing:
        raise InputError(400, f"missing input(s) {missing}", "inputs")
    rows = {value.shape[0] for value in tensors.values()}
    if len(rows) != 1:
        raise InputError(400, f"inputs disagree on the batch dimension: {sorted(rows)}", "inputs")
    n_rows = rows.pop()
    if n_rows < 1:
        raise InputError(400, "the batch dimension must be at least 1", "inputs")
    if n_rows > max_rows:
        raise InputError(413, f"{n_rows} rows; at most {max_rows} per request", "inputs")
    spec = model.manifest.feature_spec
    widths = {"categorical": len(spec.categorical), "numeric": len(spec.numeric)}
    for name, value in tensors.items():
        if value.shape[1] != widths.get(name, value.shape[1]):
            raise InputError(
                400, f"{name} must have {widths[name]} columns, not {value.shape[1]}", f"{where[name]}.shape"
            )
    categorical = tensors.get("categorical")
    if categorical is not None and categorical.size:
        low = np.cumsum([0] + [f.buckets for f in spec.categorical])  # each feature's id range [low_j, low_j+1)
        bad = (categorical < low[:-1]) | (categorical >= low[1:])
        if bad.any():
            row, column = (int(x) for x in np.argwhere(bad)[0])
            feature = spec.categorical[column].name
            raise InputError(
                400,
                f"categorical[{row}][{column}] ({feature}) must be in [{low[column]}, {low[column + 1]})",
                f"{where['categorical']}.data",
            )
    return n_rows


def clipped_to_training_range(
    tensors: dict[str, np.ndarray], model: ScoringModel
) -> tuple[dict[str, np.ndarray], Clipped | None]:
    """A checked request's inputs with the numeric tensor (standardised values, one column per numeric feature)
    clipped to each feature's standardised training range, and the values clipped, as ``client.enqueue``
    counts them once the batcher took the request (the model's encoder -> numeric feature -> rows clipped in
    it; None when no value was: the common case).

    The bounds are those ``model``'s encoder computed at its load and clips ``/v1/score``'s values to
    (``FeatureEncoder.standardised_range``, common/encoder.py: read, not computed again, so both paths clip at
    the same numbers). Clipped in the tensor's own dtype, the bounds rounded to it: rounding keeps order, so a
    float32 value clips to what the encoder's float64 clip rounded to float32 gives, and a row of V2 and the
    same row of ``/v1/score`` score alike. A value is counted when the clip changed it, as the encoder counts
    (so a value at the edge is not). Two ufunc calls clip, as the encoder clips (half of np.clip's cost); one
    comparison of the two tensors' bytes (a memcmp) tells whether any value changed, and only a request with
    a clipped value pays the elementwise comparison that counts them per feature."""
    numeric = tensors.get("numeric")
    if numeric is None:
        return tensors, None
    low, high = model.encoder.standardised_range
    bounded = np.maximum(numeric, low, dtype=numeric.dtype)
    np.minimum(bounded, high, out=bounded, dtype=numeric.dtype)
    clipped = {**tensors, "numeric": bounded}
    if bounded.tobytes() == numeric.tobytes():
        return clipped, None
    # a -0.0 at a bound of 0.0 may come back as 0.0 (x86's max of two zeros gives the second): other bytes,
    # the same value, counted 0
    counts = model.encoder.clipped_counts(bounded != numeric)
    return clipped, {model.encoder: counts} if any(counts.values()) else None


def declared_input(model: ScoringModel, name: Any, seen: dict[str, np.ndarray], where: str) -> str:
    """The model's numpy dtype name for input ``name``; 400 when it is not a string, unknown or given twice."""
    declared = {t.name: t.dtype for t in model.manifest.inputs}
    if type(name) is not str:  # a list or object is no dictionary key: a TypeError, answered 500
        raise InputError(400, f"each input needs a name, a string: one of {sorted(declared)}", f"{where}.name")
    if name not in declared:
        raise InputError(400, f"unknown input {echoed(name)}; the model takes {sorted(declared)}", f"{where}.name")
    if name in seen:
        raise InputError(400, f"input {name!r} is given twice", f"{where}.name")
    return declared[name]


def refuse_classification(parameters: Any, where: str) -> None:
    """400 for Triton's ``classification`` output parameter: each output is one probability per row, not
    a vector of class scores to rank, and answering the plain tensor instead would mislead the client."""
    if parameters is not None and "classification" in parameters:
        raise InputError(
            400,
            "the classification extension is not supported: each output is one probability per row; "
            "ask for the tensor without 'classification'",
            f"{where}.parameters.classification",
        )


def requested_outputs(names: list[Any], model: ScoringModel, where: str = "outputs") -> list[str]:
    """The output names asked for, each once, in order (every output when none is named)."""
    if not names:
        return list(model.output_names)
    for i, name in enumerate(names):
        if name not in model.output_names:
            raise InputError(
                400, f"unknown output {echoed(name)}; the model has {list(model.output_names)}", f"{where}[{i}].name"
            )
    return list(dict.fromkeys(names))


def output_datatype(value: np.ndarray) -> str:
    return DATATYPES.get(value.dtype.name, "FP32")
