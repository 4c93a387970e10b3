"""KServe V2 gRPC infer messages <-> checked input tensors and outputs (the REST twin is v2/protocol.py).

A ``ModelInferRequest`` carries each input either as raw little-endian bytes (``raw_input_contents``,
one entry per input in order: what tritonclient sends) or as a typed list in ``contents``
(``int64_contents`` for INT64, ``fp32_contents`` for FP32). Sizes are checked against the declared
shape and datatype before numpy sees them, and every check of v2/tensors.py applies. Outputs are
answered as ``raw_output_contents``, which every client of the protocol reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.http.errors import InputError
from service.models.scoring_model import ScoringModel
from service.v2 import tensors as t
from service.v2.grpc import messages as pb
from service.v2.protocol import InferCall

CONTENTS = {"INT64": "int64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents"}  # datatype -> field


def parse_request(request: pb.ModelInferRequest, model: ScoringModel, max_rows: int) -> InferCall:
    """The checked call from an infer request; InputError (400 / 413) naming the field at fault."""
    if not request.inputs:
        raise InputError(400, "inputs must be a non-empty list of tensors", "inputs")
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InputError(
            400, f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs", "raw_input_contents"
        )
    tensors: dict[str, np.ndarray] = {}
    where: dict[str, str] = {}
    for i, tensor in enumerate(request.inputs):
        place = f"inputs[{i}]"
        dtype = t.declared_input(model, tensor.name, tensors, place)
        try:
            tensors[tensor.name] = _tensor(tensor, raw[i] if raw else None, dtype, place, i)
        except InputError as error:
            raise t.for_input(tensor.name, error) from None
        where[tensor.name] = place
    rows = t.check_request(tensors, where, model, max_rows)
    for i, output in enumerate(request.outputs):
        t.refuse_classification(output.parameters, f"outputs[{i}]")
    outputs = t.requested_outputs([o.name for o in request.outputs], model)
    return InferCall(request.id or None, tensors, rows, outputs, frozenset(outputs))


def _tensor(tensor: Any, raw: bytes | None, dtype: str, place: str, i: int) -> np.ndarray:
    """The checked values of one input: its ``raw`` bytes (``raw_input_contents[i]``) or its typed contents."""
    rows, width = t.check_header(tensor.datatype, list(tensor.shape), dtype, place)
    if raw is not None:
        if tensor.HasField("contents"):
            raise InputError(400, "an input must not have contents when raw_input_contents is used", place)
        values = t.from_bytes(raw, tensor.datatype, rows, width, f"raw_input_contents[{i}]")
    else:
        expected = CONTENTS[tensor.datatype]
        others = [field.name for field, _ in tensor.contents.ListFields() if field.name != expected]
        if others:
            raise InputError(400, f"{tensor.datatype} values go in contents.{expected}, not in {others}", place)
        values = t.from_numbers(getattr(tensor.contents, expected), dtype, rows, width, place)
    return t.check_values(values, dtype, place)


def render_response(model: ScoringModel, call: InferCall, outputs: dict[str, np.ndarray]) -> pb.ModelInferResponse:
    """The infer response, every output as raw little-endian bytes."""
    response = pb.ModelInferResponse(model_name=model.name, model_version=str(model.version), id=call.request_id or "")
    for name in call.outputs:
        value = outputs[name]
        datatype = t.output_datatype(value)
        response.outputs.add(name=name, datatype=datatype, shape=list(value.shape))
        # encoded as ../protocol.py's render_infer does its binary outputs, inline: no call per output
        response.raw_output_contents.append(np.ascontiguousarray(value, dtype=t.WIRE_DTYPES[datatype]).tobytes())
    return response
