"""Open Inference Protocol (KServe V2) REST bodies: model metadata, and infer requests and responses.

An infer request carries the model's own input tensors (the encoded features, as ``GET
/v2/models/{name}`` describes them), row-major, flat or nested:

```json
{"id": "r1", "inputs": [{"name": "categorical", "datatype": "INT64", "shape": [2, 5], "data": [...]},
                        {"name": "numeric", "datatype": "FP32", "shape": [2, 3], "data": [...]}],
 "outputs": [{"name": "pctr"}]}
```
Every check that ONNX Runtime would otherwise fail on (names, datatypes, shapes, element types,
categorical ids outside their feature's bucket range, non-finite or out-of-range floats) is a 400 that
names the field, never a 500.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from common.encoder import FLOAT32_LIMIT
from service.http.body import parse_json
from service.http.errors import InputError
from service.models.base import ServedModel
from service.models.scoring_model import ScoringModel

DATATYPES = {"int64": "INT64", "float32": "FP32", "float64": "FP64"}  # numpy dtype name -> V2 datatype
PLATFORM = "onnxruntime_onnx"


def model_metadata(model: ServedModel, versions: list[int]) -> dict[str, Any]:
    manifest = model.manifest
    return {
        "name": model.name,
        "versions": [str(v) for v in versions],
        "platform": PLATFORM,
        "inputs": [{"name": t.name, "datatype": DATATYPES[t.dtype], "shape": _shape(t.shape)} for t in manifest.inputs],
        "outputs": [
            {"name": t.name, "datatype": DATATYPES[t.dtype], "shape": _shape(t.shape)} for t in manifest.outputs
        ],
    }


def _shape(shape: list[int | str]) -> list[int]:
    return [dim if isinstance(dim, int) else -1 for dim in shape]


BYTES_PER_VALUE = 40  # a number as JSON text at its longest ("-1.2345678901234567e+308"), with separators


def largest_body(model: ScoringModel, max_rows: int) -> int:
    """An upper bound on the size of a valid infer body for ``model`` (``max_rows`` rows, compact JSON):
    larger bodies are refused from their Content-Length, before they are read or parsed."""
    spec = model.manifest.feature_spec
    return 4096 + max_rows * (len(spec.categorical) + len(spec.numeric)) * BYTES_PER_VALUE


def parse_infer(
    body: bytes, model: ScoringModel, max_rows: int
) -> tuple[str | None, dict[str, np.ndarray], int, list[str]]:
    """(request id, input tensors, rows, output names) from an infer body; InputError on anything wrong."""
    data = parse_json(body)
    if type(data) is not dict:
        raise InputError(400, "body must be a JSON object with 'inputs'")
    request_id = data.get("id")
    if request_id is not None and type(request_id) is not str:
        raise InputError(400, "id must be a string", "id")
    inputs = data.get("inputs")
    if type(inputs) is not list or not inputs:
        raise InputError(400, "inputs must be a non-empty list of tensors", "inputs")
    declared = {t.name: t for t in model.manifest.inputs}
    tensors: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}]"
        if type(tensor) is not dict:
            raise InputError(400, "each input must be an object with name, datatype, shape and data", where)
        name = tensor.get("name")
        if name not in declared:
            raise InputError(400, f"unknown input {name!r}; the model takes {sorted(declared)}", f"{where}.name")
        if name in tensors:
            raise InputError(400, f"input {name!r} is given twice", f"{where}.name")
        tensors[name] = _tensor(tensor, declared[name].dtype, where)
    missing = sorted(set(declared) - set(tensors))
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
    _check_widths(tensors, model)
    return request_id, tensors, n_rows, _outputs(data.get("outputs"), model)


def _tensor(tensor: dict[str, Any], dtype: str, where: str) -> np.ndarray:
    datatype = tensor.get("datatype")
    if datatype != DATATYPES[dtype]:
        raise InputError(400, f"datatype must be {DATATYPES[dtype]}, not {datatype!r}", f"{where}.datatype")
    shape = tensor.get("shape")
    if type(shape) is not list or len(shape) != 2 or any(type(d) is not int or d < 0 for d in shape):
        raise InputError(400, "shape must be [rows, width] of non-negative integers", f"{where}.shape")
    data = tensor.get("data")
    if not _fits(data, shape[0], shape[1]):  # checked before numpy sees it: a cheap refusal for large bodies
        raise InputError(
            400, f"data must hold {shape[0] * shape[1]} numbers (shape {shape}), flat or as rows", f"{where}.data"
        )
    try:
        values = np.array(data)
    except (ValueError, OverflowError, TypeError):
        raise InputError(400, "data must be a (nested) list of numbers", f"{where}.data") from None
    kinds = "iu" if dtype == "int64" else "iuf"
    if values.dtype.kind not in kinds or values.size != shape[0] * shape[1]:
        expected = "integers" if dtype == "int64" else "numbers"
        raise InputError(400, f"data must hold {shape[0] * shape[1]} {expected} (shape {shape})", f"{where}.data")
    if dtype != "int64" and values.size and not (np.abs(values) <= FLOAT32_LIMIT).all():
        raise InputError(400, "data holds a number out of float32 range", f"{where}.data")
    if values.dtype.kind == "u" and values.size and values.max() > np.iinfo(np.int64).max:
        raise InputError(400, "data holds an integer out of int64 range", f"{where}.data")
    return values.astype(dtype, copy=False).reshape(shape)


def _fits(data: Any, rows: int, width: int) -> bool:
    """Whether ``data`` is a flat list of rows*width values, or rows lists of width values each."""
    if type(data) is not list:
        return False
    if len(data) == rows * width and (not data or type(data[0]) is not list):
        return True
    return len(data) == rows and all(type(row) is list and len(row) == width for row in data)


def _check_widths(tensors: dict[str, np.ndarray], model: ScoringModel) -> None:
    spec = model.manifest.feature_spec
    where = {name: f"inputs[{i}]" for i, name in enumerate(tensors)}
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


def _outputs(requested: Any, model: ScoringModel) -> list[str]:
    if requested is None:
        return list(model.output_names)
    if type(requested) is not list or any(type(o) is not dict for o in requested):
        raise InputError(400, "outputs must be a list of objects with a name", "outputs")
    names = [o.get("name") for o in requested]
    for i, name in enumerate(names):
        if name not in model.output_names:
            raise InputError(
                400, f"unknown output {name!r}; the model has {list(model.output_names)}", f"outputs[{i}].name"
            )
    return list(dict.fromkeys(names))


def render_infer(
    model: ScoringModel, request_id: str | None, outputs: dict[str, np.ndarray], names: list[str]
) -> bytes:
    body: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version)}
    if request_id is not None:
        body["id"] = request_id
    body["outputs"] = [
        {
            "name": name,
            "datatype": DATATYPES.get(outputs[name].dtype.name, "FP32"),
            "shape": list(outputs[name].shape),
            "data": outputs[name].tolist(),
        }
        for name in names
    ]
    return orjson.dumps(body)
