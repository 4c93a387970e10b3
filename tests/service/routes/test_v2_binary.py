"""V2 REST as the protocol's clients send it: no Content-Type, the binary tensor data extension, model
configuration and statistics (the tiny model; tests/integration/test_tritonclient.py uses the real clients)."""

from __future__ import annotations

import re

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.support.v2_bodies import CATEGORICAL, NUMERIC, binary_body, json_body

URL = "/v2/models/esmm/infer"


def split(response_content: bytes, header_size: int) -> tuple[dict, bytes]:
    return orjson.loads(response_content[:header_size]), response_content[header_size:]


def test_no_content_type_is_json_and_a_wrong_one_is_415(client: TestClient) -> None:
    plain = client.post(URL, content=json_body())  # httpx sends no Content-Type for raw content
    assert plain.status_code == 200, plain.text
    curl = client.post(URL, content=json_body(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert curl.status_code == 200, curl.text  # curl -d's default type (and urllib's), read as JSON as Triton does
    assert client.post(URL, content=json_body(), headers={"Content-Type": "application/json"}).status_code == 200
    wrong = client.post(URL, content=json_body(), headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 415 and "text/plain" in wrong.json()["error"]
    octet = client.post(URL, content=json_body(), headers={"Content-Type": "application/octet-stream"})
    assert octet.status_code == 415  # raw bytes only come with the binary extension's header
    body, headers = binary_body()
    octet_binary = client.post(URL, content=body, headers={**headers, "Content-Type": "application/octet-stream"})
    assert octet_binary.status_code == 200
    not_gzip = client.post(URL, content=json_body(), headers={"Content-Encoding": "gzip"})
    assert not_gzip.status_code == 400 and "not valid gzip data" in not_gzip.json()["error"]
    brotli = client.post(URL, content=json_body(), headers={"Content-Encoding": "br"})
    assert brotli.status_code == 415 and brotli.headers["accept-encoding"] == "gzip, deflate"


def test_binary_inputs_give_the_json_outputs(client: TestClient) -> None:
    expected = client.post(URL, content=json_body()).json()["outputs"]
    body, headers = binary_body()
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json()["outputs"] == expected


def test_binary_outputs_per_output_or_for_all(client: TestClient) -> None:
    expected = {
        o["name"]: np.array(o["data"], dtype=np.float32)
        for o in client.post(URL, content=json_body()).json()["outputs"]
    }
    asked = [{"name": "pctr", "parameters": {"binary_data": True}}, {"name": "pcvr"}]
    for request in ({"outputs": asked}, {"parameters": {"binary_data_output": True}}):
        body, headers = binary_body(**request)
        response = client.post(URL, content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        header, raw = split(response.content, int(response.headers["inference-header-content-length"]))
        offset = 0
        for output in header["outputs"]:
            if "parameters" in output:
                size = output["parameters"]["binary_data_size"]
                value = np.frombuffer(raw[offset : offset + size], dtype="<f4")
                offset += size
            else:
                value = np.array(output["data"], dtype=np.float32)
            np.testing.assert_array_equal(value, expected[output["name"]])
        assert offset == len(raw)
    # an output's own binary_data: false overrides binary_data_output
    body, headers = binary_body(
        parameters={"binary_data_output": True}, outputs=[{"name": "pctr", "parameters": {"binary_data": False}}]
    )
    response = client.post(URL, content=body, headers=headers)
    assert response.headers["content-type"] == "application/json" and "data" in response.json()["outputs"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b, h: (b, {"Inference-Header-Content-Length": "x"}), "Inference-Header-Content-Length"),
        (lambda b, h: (b, {"Inference-Header-Content-Length": str(len(b) + 1)}), "within the body"),
        # a header of 0 or one short of the JSON said "body is empty" / "not valid JSON", as if of the whole body
        (lambda b, h: (b, {"Inference-Header-Content-Length": "0"}), "body's first 0 bytes as Inference-Header-"),
        (lambda b, h: (b, {"Inference-Header-Content-Length": "7"}), "not valid JSON: .* body's first 7 bytes as"),
        (lambda b, h: (b[:-4], h), "runs past the body"),
        (lambda b, h: (b + b"\0" * 4, h), "4 bytes of binary data follow"),
        (lambda b, h: (b + b"\0", h), "^1 byte of binary data follows the inputs"),  # said "1 bytes ... follow"
    ],
)
def test_binary_framing_errors_are_400(client: TestClient, change: object, message: str) -> None:
    body, headers = change(*binary_body())  # type: ignore[operator]
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 400 and re.search(message, response.json()["error"]), response.text


def test_binary_sizes_are_checked_against_the_declared_shape(client: TestClient) -> None:
    """A binary_data_size that disagrees with shape x datatype is refused before numpy sees the bytes,
    however large the shape claims to be; NaN and ids out of range are refused as in JSON."""
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "categorical",
                    "datatype": "INT64",
                    "shape": [10**12, 3],
                    "parameters": {"binary_data_size": 48},
                },
                {"name": "numeric", "datatype": "FP32", "shape": [2, 2], "parameters": {"binary_data_size": 16}},
            ]
        }
    )
    body = head + CATEGORICAL.tobytes() + NUMERIC.tobytes()
    response = client.post(URL, content=body, headers={"Inference-Header-Content-Length": str(len(head))})
    assert response.status_code == 400
    assert response.json() == {
        "error": "input 'categorical': binary data of 48 bytes; shape [1000000000000, 3] of INT64 takes 24000000000000",
        "field": "inputs[0].parameters.binary_data_size",
    }
    nan = NUMERIC.copy()
    nan[1, 1] = np.nan
    body, headers = binary_body(numeric=nan)
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 400 and response.json()["field"] == "inputs[1].data"
    outside = CATEGORICAL.copy()
    outside[0, 2] = 10**9
    body, headers = binary_body(categorical=outside)
    assert "categorical[0][2]" in client.post(URL, content=body, headers=headers).json()["error"]
    both = orjson.loads(binary_body()[0][: int(binary_body()[1]["Inference-Header-Content-Length"])])
    both["inputs"][0]["data"] = CATEGORICAL.tolist()
    head = orjson.dumps(both)
    response = client.post(
        URL,
        content=head + CATEGORICAL.tobytes() + NUMERIC.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert response.status_code == 400 and "must not also have data" in response.json()["error"]


def test_binary_rows_over_the_limit_are_413(client: TestClient, settings: Settings) -> None:
    rows = settings.max_candidates + 1
    body, headers = binary_body(np.tile(CATEGORICAL[:1], (rows, 1)), np.tile(NUMERIC[:1], (rows, 1)))
    response = client.post(URL, content=body, headers=headers)
    assert response.status_code == 413 and response.json()["field"] == "inputs"


def test_model_config_in_tritons_shape(client: TestClient) -> None:
    config = client.get("/v2/models/esmm/config").json()
    assert config == client.get("/v2/models/esmm/versions/1/config").json()
    assert config["input"] == [
        {"name": "categorical", "data_type": "TYPE_INT64", "dims": [3]},
        {"name": "numeric", "data_type": "TYPE_FP32", "dims": [2]},
    ]
    assert config["output"][0] == {"name": "pctr", "data_type": "TYPE_FP32", "dims": [1], "reshape": {"shape": []}}
    assert config["version_policy"] == {"latest": {"num_versions": 1}}
    assert config["dynamic_batching"] == {"max_queue_delay_microseconds": 500}
    assert config["max_batch_size"] == 50  # CTR_MAX_CANDIDATES here, under the batcher's 1024: a larger request is 413
    rows = np.zeros((51, 3), dtype=np.int64) + CATEGORICAL[0]
    body, headers = binary_body(rows, np.zeros((51, 2), dtype=np.float32))
    assert client.post(URL, content=body, headers=headers).status_code == 413
    assert client.get("/v2/models/nope/config").status_code == 404
    assert client.get("/v2/models/esmm/versions/2/config").status_code == 404


def test_statistics_follow_the_batchers_counters(client: TestClient) -> None:
    (before,) = client.get("/v2/models/esmm/stats").json()["model_stats"]
    assert client.post(URL, content=json_body()).status_code == 200
    (after,) = client.get("/v2/models/esmm/versions/1/stats").json()["model_stats"]
    assert after["inference_count"] == before["inference_count"] + 2
    assert after["inference_stats"]["success"]["count"] == before["inference_stats"]["success"]["count"] + 1
    assert after["inference_stats"]["success"]["ns"] > before["inference_stats"]["success"]["ns"]
    assert after["inference_stats"]["compute_infer"]["count"] == after["execution_count"]
    assert client.get("/v2/models/stats").json()["model_stats"] == [after]
    assert client.get("/v2/models/nope/stats").status_code == 404


def test_grpc_port_must_differ_from_the_http_port() -> None:
    with pytest.raises(ValueError, match="grpc_port"):
        Settings(port=8000, grpc_port=8000)
    assert Settings(grpc_port=8001).grpc_port == 8001
