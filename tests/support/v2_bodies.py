"""Open Inference Protocol (KServe V2) request bodies of the tiny model's input tensors: as JSON
(``infer_body``, ``json_body``) and with the binary tensor data extension (``binary_body``)."""

from __future__ import annotations

import numpy as np
import orjson

CATEGORICAL = np.array([[1, 60, 80], [2, 51, 99]], dtype=np.int64)  # ids inside each feature's bucket range
NUMERIC = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)


def infer_body(categorical: list[list[int]], numeric: list[list[float]], **extra: object) -> dict:
    return {
        "inputs": [
            {"name": "categorical", "datatype": "INT64", "shape": [len(categorical), 3], "data": categorical},
            {"name": "numeric", "datatype": "FP32", "shape": [len(numeric), 2], "data": numeric},
        ],
        **extra,
    }


def binary_body(
    categorical: np.ndarray = CATEGORICAL, numeric: np.ndarray = NUMERIC, extra: bytes = b"", **request: object
) -> tuple[bytes, dict[str, str]]:
    """A binary-extension body (both inputs as raw bytes) and its Inference-Header-Content-Length."""
    raw = [categorical.astype("<i8").tobytes(), numeric.astype("<f4").tobytes()]
    header = {
        "inputs": [
            {
                "name": "categorical",
                "datatype": "INT64",
                "shape": list(categorical.shape),
                "parameters": {"binary_data_size": len(raw[0])},
            },
            {
                "name": "numeric",
                "datatype": "FP32",
                "shape": list(numeric.shape),
                "parameters": {"binary_data_size": len(raw[1])},
            },
        ],
        **request,
    }
    head = orjson.dumps(header)
    return head + raw[0] + raw[1] + extra, {"Inference-Header-Content-Length": str(len(head))}


def json_body() -> bytes:
    return orjson.dumps(
        {
            "inputs": [
                {"name": "categorical", "datatype": "INT64", "shape": [2, 3], "data": CATEGORICAL.tolist()},
                {"name": "numeric", "datatype": "FP32", "shape": [2, 2], "data": NUMERIC.tolist()},
            ]
        }
    )
