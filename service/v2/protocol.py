"""Open Inference Protocol (KServe V2) REST bodies: model metadata, and infer requests and responses,
in JSON and with the binary tensor data extension.

An infer request carries the model's own input tensors (the encoded features, as ``GET
/v2/models/{name}`` describes them), row-major, flat or nested:

```json
{"id": "r1", "inputs": [{"name": "categorical", "datatype": "INT64", "shape": [2, 5], "data": [...]},
                        {"name": "numeric", "datatype": "FP32", "shape": [2, 3], "data": [...]}],
 "outputs": [{"name": "pctr"}]}
```
**Binary tensor data** (what tritonclient sends by default): the body is that JSON header followed by
raw little-endian tensors; the ``Inference-Header-Content-Length`` request header gives the header's
size, and each binary input says ``"parameters": {"binary_data_size": N}`` instead of ``data``, its
bytes following in the order of the inputs. Outputs are answered in binary when asked per output
(``"parameters": {"binary_data": true}``) or for all (request ``"parameters": {"binary_data_output":
true}``, which a per-output ``binary_data`` overrides): their bytes follow the JSON response header,
whose size the response's ``Inference-Header-Content-Length`` gives. Every check that ONNX Runtime
would otherwise fail on is a 400 that names the field (tensors.py), never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from common.plural import counted
from service.http.body import parse_json
from service.http.errors import InputError, echoed_json
from service.http.scope_keys import INFER_ID
from service.models.base import ServedModel
from service.models.scoring_model import ScoringModel
from service.v2 import tensors as t

PLATFORM = "onnxruntime_onnx"
HEADER_LENGTH = "inference-header-content-length"  # the binary tensor data extension's header
INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def model_metadata(model: ServedModel, versions: list[int]) -> dict[str, Any]:
    manifest = model.manifest
    return {
        "name": model.name,
        "versions": [str(v) for v in versions],
        "platform": PLATFORM,
        "inputs": [
            {"name": x.name, "datatype": t.DATATYPES[x.dtype], "shape": _shape(x.shape)} for x in manifest.inputs
        ],
        "outputs": [
            {"name": x.name, "datatype": t.DATATYPES[x.dtype], "shape": _shape(x.shape)} for x in manifest.outputs
        ],
    }


def _shape(shape: list[int | str]) -> list[int]:
    return [dim if isinstance(dim, int) else -1 for dim in shape]


BYTES_PER_VALUE = 40  # a number as JSON text at its longest ("-1.2345678901234567e+308"), with separators


def largest_body(model: ScoringModel, max_rows: int) -> int:
    """An upper bound on the size of a valid infer body for ``model`` (``max_rows`` rows, compact JSON;
    binary tensors take 8 bytes a value at most): larger bodies are refused from their Content-Length,
    before they are read or parsed."""
    spec = model.manifest.feature_spec
    return 4096 + max_rows * (len(spec.categorical) + len(spec.numeric)) * BYTES_PER_VALUE


@dataclass(frozen=True)
class InferCall:
    """A checked infer request: its inputs and what to answer."""

    request_id: str | None
    inputs: dict[str, np.ndarray]
    rows: int
    outputs: list[str]
    binary: frozenset[str]  # the outputs to answer as binary tensor data


def header_length(value: str | None, body_size: int) -> int | None:
    """The JSON header's size from an ``Inference-Header-Content-Length`` value (None: no header)."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 18) or int(value) > body_size:
        raise InputError(
            400,
            f"Inference-Header-Content-Length must be a byte count within the body's {body_size} bytes",
            "Inference-Header-Content-Length",
        )
    return int(value)


def parse_infer(
    body: bytes, model: ScoringModel, max_rows: int, json_size: int | None = None, scope: dict | None = None
) -> InferCall:
    """The checked request from an infer body (its first ``json_size`` bytes JSON, the rest binary
    tensors, when the binary extension is used); InputError on anything wrong. The body's ``id`` goes on
    ``scope`` (the request's, when its access line is logged) as soon as it is read, so the line of a request
    refused for its tensors names it too (log_format.correlation)."""
    binary = memoryview(body)[json_size:] if json_size is not None else memoryview(b"")
    try:
        data = parse_json(body if json_size is None else body[:json_size])
    except InputError as error:
        if json_size is None and b'"binary_data_size"' in body:  # binary tensors after a JSON header
            hint = "a body with binary tensor data needs the Inference-Header-Content-Length header"
            raise InputError(400, f"{error.message}; {hint}") from None
        if json_size is not None:  # "body is empty" for a header of 0, of a body of hundreds of bytes
            said = f"the JSON header, the body's first {json_size} bytes as Inference-Header-Content-Length says"
            raise InputError(400, f"{error.message} ({said})", "Inference-Header-Content-Length") from None
        raise
    if type(data) is not dict:
        raise InputError(400, "body must be a JSON object with 'inputs'")
    request_id = data.get("id")
    if request_id is not None:
        if type(request_id) is not str:
            raise InputError(400, "id must be a string", "id")
        if scope is not None:
            scope[INFER_ID] = request_id
    inputs = data.get("inputs")
    if type(inputs) is not list or not inputs:
        raise InputError(400, "inputs must be a non-empty list of tensors", "inputs")
    tensors: dict[str, np.ndarray] = {}
    where: dict[str, str] = {}
    offset = 0
    end = len(body) if json_size is None else json_size  # JSON true/false anywhere: look for them in the data
    literals = body.find(b"true", 0, end) >= 0 or body.find(b"false", 0, end) >= 0
    for i, tensor in enumerate(inputs):
        place = f"inputs[{i}]"
        if type(tensor) is not dict:
            raise InputError(400, "each input must be an object with name, datatype, shape and data", place)
        name = tensor.get("name")
        dtype = t.declared_input(model, name, tensors, place)
        try:
            tensors[name], offset = _tensor(tensor, dtype, binary, offset, place, literals)
        except InputError as error:
            raise t.for_input(name, error) from None
        where[name] = place
    if offset != len(binary):
        extra = len(binary) - offset
        raise InputError(
            400,
            f"{counted(extra, 'byte')} of binary data {'follows' if extra == 1 else 'follow'} "
            "the inputs' binary_data_size",
        )
    n_rows = t.check_request(tensors, where, model, max_rows)
    outputs, binary_outputs = _outputs(data.get("outputs"), data.get("parameters"), model)
    return InferCall(request_id, tensors, n_rows, outputs, binary_outputs)


def _tensor(
    tensor: dict, dtype: str, binary: memoryview, offset: int, place: str, literals: bool
) -> tuple[np.ndarray, int]:
    """The checked values of one input (JSON ``data``, or its ``binary_data_size`` bytes of ``binary`` from
    ``offset``), and the offset of the next input's bytes; ``literals``: the body holds a JSON true or
    false somewhere, which the data are then checked for."""
    rows, width = t.check_header(tensor.get("datatype"), tensor.get("shape"), dtype, place)
    size = _binary_size(tensor.get("parameters"), place)
    if size is None:
        values = _from_json(tensor.get("data"), dtype, rows, width, place, literals)
    else:
        if "data" in tensor:
            raise InputError(400, "an input with binary_data_size must not also have data", f"{place}.data")
        field = f"{place}.parameters.binary_data_size"
        if offset + size > len(binary):
            raise InputError(
                400, f"binary_data_size {size} runs past the body's {counted(len(binary), 'byte')} of binary", field
            )
        values = t.from_bytes(binary[offset : offset + size], tensor["datatype"], rows, width, field)
        offset += size
    return t.check_values(values, dtype, place), offset


def _binary_size(parameters: Any, where: str) -> int | None:
    if parameters is None:
        return None
    if type(parameters) is not dict:
        raise _parameters_error(where)
    size = parameters.get("binary_data_size")
    if size is not None and (type(size) is not int or size < 0):
        raise _parameters_error(where, "binary_data_size", "binary_data_size must be a non-negative integer")
    return size


def _from_json(data: Any, dtype: str, rows: int, width: int, where: str, literals: bool) -> np.ndarray:
    if not _fits(data, rows, width):  # checked before numpy sees it: a cheap refusal for large bodies
        raise _not_flat_or_rows(rows, width, where)
    try:
        values = np.array(data)
    except (ValueError, OverflowError, TypeError):
        raise InputError(400, "data must be a (nested) list of numbers", f"{where}.data") from None
    kinds = "iu" if dtype == "int64" else "iuf"
    if values.ndim > 2:  # rows of one-value lists ([[[0], [50]]]) passed as rows, answered 200
        raise _not_flat_or_rows(rows, width, where)
    if values.dtype.kind not in kinds or values.size != rows * width or (literals and _holds_bool(data)):
        raise _not_of_kind(data, dtype, rows, width, where)
    if values.dtype.kind == "u" and values.size and values.max() > INT64_MAX:  # all >= 0, one past int64
        if dtype == "int64":  # said as when a smaller or negative one beside it made numpy's array float64
            raise _not_of_kind(data, dtype, rows, width, where)
        raise InputError(400, "data holds an integer out of int64 range", f"{where}.data")
    return values.reshape(rows, width)


def _not_of_kind(data: list, dtype: str, rows: int, width: int, where: str) -> InputError:
    expected = "integers" if dtype == "int64" else "numbers"
    return InputError(
        400,
        f"data must hold {rows * width} {expected} (shape {[rows, width]}){_first_wrong(data, dtype)}",
        f"{where}.data",
    )


def _not_flat_or_rows(rows: int, width: int, where: str) -> InputError:
    return InputError(
        400, f"data must hold {rows * width} numbers (shape {[rows, width]}), flat or as rows", f"{where}.data"
    )


def _first_wrong(data: list, dtype: str) -> str:
    """Where the first value of another kind sits, for the refusal (a ``true``, a ``"1.0"`` or a 0.5 among
    integers was "data must hold 3 numbers" whatever it was), or, for INT64, the first integer past int64 (a
    raw uint64 hash: numpy makes a list mixing one with smaller integers float64, and that was all the message
    said); "" when no single value is to blame."""
    integers = dtype == "int64"
    wanted = (int,) if integers else (int, float)
    nested = bool(data) and type(data[0]) is list
    for i, row in enumerate(data if nested else [data]):
        for j, value in enumerate(row if type(row) is list else [row]):
            if type(value) not in wanted:
                return f": data{f'[{i}][{j}]' if nested else f'[{j}]'} is {echoed_json(value)}"
            if integers and not INT64_MIN <= value <= INT64_MAX:
                return f": data{f'[{i}][{j}]' if nested else f'[{j}]'} is {value}, an integer out of int64 range"
    return ""


def _holds_bool(data: list) -> bool:
    """Whether JSON ``true``/``false`` sit among the numbers (numpy would take them as 1 and 0)."""
    rows = data if data and type(data[0]) is list else [data]
    return any(bool in set(map(type, row)) for row in rows)


def _fits(data: Any, rows: int, width: int) -> bool:
    """Whether ``data`` is a flat list of rows*width values, or rows lists of width values each."""
    if type(data) is not list:
        return False
    if len(data) == rows * width and (not data or type(data[0]) is not list):
        return True
    return len(data) == rows and all(type(row) is list and len(row) == width for row in data)


def _flag(parameters: Any, key: str, where: str) -> bool | None:
    if parameters is None:
        return None
    if type(parameters) is not dict:
        raise _parameters_error(where)
    value = parameters.get(key)
    if value is not None and type(value) is not bool:
        raise _parameters_error(where, key, f"{key} must be true or false")
    return value


def _parameters_error(where: str, key: str | None = None, message: str = "parameters must be an object") -> InputError:
    """A 400 naming the ``parameters`` of ``where`` (an input's or output's path; "" for the request's own), or
    its ``key``. The path is built here, on refusal only: an accepted request builds no field string for it."""
    field = f"{where}.parameters" if where else "parameters"
    return InputError(400, message, f"{field}.{key}" if key else field)


def _outputs(requested: Any, parameters: Any, model: ScoringModel) -> tuple[list[str], frozenset[str]]:
    """The outputs asked for and which of them to answer in binary."""
    all_binary = bool(_flag(parameters, "binary_data_output", ""))
    if requested is None:
        names = t.requested_outputs([], model)
        return names, frozenset(names) if all_binary else frozenset()
    if type(requested) is not list or any(type(o) is not dict for o in requested):
        raise InputError(400, "outputs must be a list of objects with a name", "outputs")
    names = t.requested_outputs([o.get("name") for o in requested], model)
    binary = set()
    for i, output in enumerate(requested):
        where = f"outputs[{i}]"
        flag = _flag(output.get("parameters"), "binary_data", where)
        t.refuse_classification(output.get("parameters"), where)
        if flag or (flag is None and all_binary):
            binary.add(output["name"])
    return names, frozenset(binary)


def render_infer(model: ScoringModel, call: InferCall, outputs: dict[str, np.ndarray]) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's size when binary tensors follow it (else None)."""
    body: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version)}
    if call.request_id is not None:
        body["id"] = call.request_id
    rendered, raw = [], []
    for name in call.outputs:
        value = outputs[name]
        datatype = t.output_datatype(value)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(value.shape)}
        if name in call.binary:  # encoded as grpc/protocol.py's render_response does, inline: no call per output
            data = np.ascontiguousarray(value, dtype=t.WIRE_DTYPES[datatype]).tobytes()
            tensor["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            tensor["data"] = value.tolist()
        rendered.append(tensor)
    body["outputs"] = rendered
    header = orjson.dumps(body)
    if not raw:
        return header, None
    return b"".join((header, *raw)), len(header)
