"""Nine candidates of the tiny ESMM (``CONTEXT``, ``CANDIDATES``), their input tensors as the service encodes
them (``encoded``), those tensors in a ModelInfer request as any gRPC client sends it (``infer_request``), and
tensors as tritonclient's HTTP and gRPC clients take them (``http_inputs``, ``grpc_inputs``): for the tests of
the Open Inference Protocol's clients against the real service."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2

from common.encoder import FeatureEncoder
from tests.support.tiny_model import SPEC

CONTEXT = {"user_id": "u_3", "hour": 5}
CANDIDATES = [{"ad_id": f"ad_{i}", "ad_price": float(i), "ad_quality": 0.1 * i} for i in range(9)]


def encoded() -> tuple[np.ndarray, np.ndarray]:
    """The model's input tensors for CANDIDATES, encoded as the service encodes them."""
    columns = {**CONTEXT, **{key: [c[key] for c in CANDIDATES] for key in CANDIDATES[0]}}
    tensors = FeatureEncoder(SPEC).encode(columns, len(CANDIDATES))
    return tensors.categorical, tensors.numeric


def infer_request(
    model: str = "esmm", rows: int | None = None, input_name: str = "categorical", version: str = ""
) -> service_pb2.ModelInferRequest:
    categorical, numeric = encoded()
    if rows is not None:
        categorical, numeric = np.repeat(categorical[:1], rows, 0), np.repeat(numeric[:1], rows, 0)
    request = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    request.inputs.add(name=input_name, datatype="INT64", shape=list(categorical.shape))
    request.inputs.add(name="numeric", datatype="FP32", shape=list(numeric.shape))
    request.raw_input_contents.extend([categorical.tobytes(), numeric.tobytes()])
    return request


def http_inputs(binary: bool, categorical: np.ndarray, numeric: np.ndarray) -> list[httpclient.InferInput]:
    inputs = [
        httpclient.InferInput("categorical", list(categorical.shape), "INT64"),
        httpclient.InferInput("numeric", list(numeric.shape), "FP32"),
    ]
    inputs[0].set_data_from_numpy(categorical, binary_data=binary)
    inputs[1].set_data_from_numpy(numeric, binary_data=binary)
    return inputs


def grpc_inputs(categorical: np.ndarray, numeric: np.ndarray) -> list[grpcclient.InferInput]:
    inputs = [
        grpcclient.InferInput("categorical", list(categorical.shape), "INT64"),
        grpcclient.InferInput("numeric", list(numeric.shape), "FP32"),
    ]
    inputs[0].set_data_from_numpy(categorical)
    inputs[1].set_data_from_numpy(numeric)
    return inputs
