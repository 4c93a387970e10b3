"""Open Inference Protocol (KServe V2) routes on the tiny model, and their agreement with /v1/score."""

from __future__ import annotations

import tomllib

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from tests.support.checkout import ROOT
from tests.support.tiny_model import SPEC
from tests.support.v2_bodies import infer_body


def test_the_server_reports_the_installed_version(client: TestClient) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert client.get("/v2").json() | {"extensions": None} == {
        "name": project["name"],
        "version": project["version"],
        "extensions": None,
    }
    assert client.get("/openapi.json").json()["info"]["version"] == project["version"]


def test_server_and_model_metadata(client: TestClient) -> None:
    assert client.get("/v2").json()["extensions"] == [  # no admin token: no model_repository routes
        "model_configuration",
        "statistics",
        "binary_tensor_data",
    ]
    meta = client.get("/v2/models/esmm").json()
    assert meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert {t["name"]: (t["datatype"], t["shape"]) for t in meta["inputs"]} == {
        "categorical": ("INT64", [-1, 3]),
        "numeric": ("FP32", [-1, 2]),
    }
    assert client.get("/v2/models/esmm/versions/1").status_code == 200
    assert client.get("/v2/models/esmm/ready").json() == {"name": "esmm", "ready": True}
    assert client.get("/v2/models/esmm/versions/1/ready").status_code == 200
    unknown = ("/v2/models/nope", "/v2/models/esmm/versions/7", "/v2/models/esmm/versions/8/ready")
    for path in unknown:
        response = client.get(path)
        assert response.status_code == 404 and "error" in response.json()
    # no integer (Triton: INVALID_ARG "version should be an integral value > 0"); "²" is a digit to str.isdigit;
    # "01" is no version (as no version directory is named so: it was served as 1), nor "0" (it was a 404)
    odd_versions = (
        "/v2/models/esmm/versions/x/ready",
        "/v2/models/esmm/versions/²/ready",
        f"/v2/models/esmm/versions/{'9' * 5000}",
        "/v2/models/esmm/versions/01",
        "/v2/models/esmm/versions/01/ready",
        "/v2/models/esmm/versions/0/ready",
        "/v2/models/esmm/versions/0/stats",
    )
    for path in odd_versions:
        response = client.get(path)
        assert response.status_code == 400 and response.json()["field"] == "version", response.text


def test_infer_matches_v1_score(client: TestClient) -> None:
    """The same rows through V2 (as encoded tensors) and /v1/score (as features) give the same pctr."""
    from common.encoder import FeatureEncoder

    context = {"user_id": "u_3", "hour": 5}
    candidates = [{"ad_id": f"ad_{i}", "ad_price": float(i)} for i in range(7)]
    scored = client.post("/v1/score", json={"context": context, "candidates": candidates}).json()["scores"]
    columns = {**context, "ad_id": [c["ad_id"] for c in candidates], "ad_price": [c["ad_price"] for c in candidates]}
    encoded = FeatureEncoder(SPEC).encode(columns, 7)
    body = infer_body(encoded.categorical.tolist(), encoded.numeric.tolist(), id="r1", outputs=[{"name": "pctr"}])
    response = client.post("/v2/models/esmm/versions/1/infer", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["model_name"], result["model_version"], result["id"]) == ("esmm", "1", "r1")
    (output,) = result["outputs"]
    assert output["name"] == "pctr" and output["shape"] == [7]
    np.testing.assert_allclose(output["data"], [s["pctr"] for s in scored], rtol=1e-6)


CLASSIFIED = {"name": "pctr", "parameters": {"classification": 1}}  # Triton's classification extension


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": []}, "inputs"),
        ({"inputs": [{"name": "emb"}]}, "inputs[0].name"),
        ({"inputs": [{"name": ["categorical"]}]}, "inputs[0].name"),  # unhashable: was a 500
        ({"inputs": [{"name": {"a": 1}}]}, "inputs[0].name"),
        ({"inputs": [{"shape": [1, 3]}]}, "inputs[0].name"),
        (infer_body([[0, 50, 74]], [[0.0, 0.0]])["inputs"][:1], None),
        ({**infer_body([[0, 50, 74]], [[0.0, 0.0]]), "outputs": [{"name": "zz"}]}, "outputs[0].name"),
        (infer_body([[0, 50, 74]], [[0.0, 0.0], [1.0, 1.0]]), "inputs"),
        (infer_body([[0, 50, 999]], [[0.0, 0.0]]), "inputs[0].data"),
        (infer_body([[-1, 50, 74]], [[0.0, 0.0]]), "inputs[0].data"),
        (infer_body([[0.5, 50, 74]], [[0.0, 0.0]]), "inputs[0].data"),
        (infer_body([[0, 50, 74]], [[1e39, 0.0]]), "inputs[1].data"),
        (infer_body([[0, 50, 74]], [[3e38, -3e38]]), "inputs[1].data"),
        (
            infer_body([[[0], [50], [74]]], [[0.0, 0.0]]),
            "inputs[0].data",
        ),  # nested a level too deep: a 200  # past STANDARDISED_LIMIT: NaN scores
        (infer_body([[0, 50, 74]], [["a", 0.0]]), "inputs[1].data"),
        (infer_body([], []), "inputs[0].shape"),  # 0 rows
        (infer_body([[True, 50, 74]], [[0.0, 0.0]]), "inputs[0].data"),  # numpy would read true as 1
        (infer_body([[0, 50, 74]], [[0.0, False]]), "inputs[1].data"),
        (infer_body([[0, 50, 74]], [[0.0, 0.0]], outputs=[CLASSIFIED]), "outputs[0].parameters.classification"),
        # each parameters object named by its own path: the request's has no leading dot, an output's and an input's
        # sit under them (as a real service answered them before the paths were built in one place)
        (infer_body([[0, 50, 74]], [[0.0, 0.0]], parameters=[1]), "parameters"),
        (
            infer_body([[0, 50, 74]], [[0.0, 0.0]], parameters={"binary_data_output": 1}),
            "parameters.binary_data_output",
        ),
        (
            infer_body([[0, 50, 74]], [[0.0, 0.0]], outputs=[{"name": "pctr", "parameters": [1]}]),
            "outputs[0].parameters",
        ),
        (
            infer_body([[0, 50, 74]], [[0.0, 0.0]], outputs=[{"name": "pctr", "parameters": {"binary_data": 1}}]),
            "outputs[0].parameters.binary_data",
        ),
        ({"inputs": [{**infer_body([[0, 50, 74]], [])["inputs"][0], "parameters": [1]}]}, "inputs[0].parameters"),
        (
            {"inputs": [{**infer_body([[0, 50, 74]], [])["inputs"][0], "parameters": {"binary_data_size": -1}}]},
            "inputs[0].parameters.binary_data_size",
        ),
    ],
)
def test_infer_rejects_bad_tensors_with_400(client: TestClient, body: object, field: str | None) -> None:
    if isinstance(body, list):  # a missing input
        body, field = {"inputs": body}, "inputs"
    response = client.post("/v2/models/esmm/infer", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    if field == "inputs[0].shape":
        assert response.json()["error"] == "input 'categorical': the batch dimension must be at least 1"
    if field is not None and field.startswith("inputs[") and not field.endswith(".name"):  # tritonclient shows
        name = body["inputs"][int(field[7])]["name"]  # only the message: it names the input
        error = response.json()["error"]  # at its head: "input 'numeric': ..." or "categorical[0][2] (site) ..."
        assert error.startswith((f"input {name!r}: ", name)), error


@pytest.mark.parametrize(
    ("categorical", "numeric", "said"),
    [
        ([[0, 50, 74]], [[0.0, True]], "input 'numeric': data must hold 2 numbers (shape [1, 2]): data[0][1] is true"),
        (
            [[0, 50, 74]],
            [["1.0", 0.0]],
            "input 'numeric': data must hold 2 numbers (shape [1, 2]): data[0][0] is \"1.0\"",
        ),
        ([[0, 0.5, 74]], [[0.0, 0.0]], "data must hold 3 integers (shape [1, 3]): data[0][1] is 0.5"),
        (  # a raw uint64 FNV hash among indices: numpy made the list float64, and no value was named
            [[14695981039346656037, 40001, 50]],
            [[0.0, 0.0]],
            "input 'categorical': data must hold 3 integers (shape [1, 3]): "
            "data[0][0] is 14695981039346656037, an integer out of int64 range",
        ),
        ([[0, -1, 2**63]], [[0.0, 0.0]], "data[0][2] is 9223372036854775808, an integer out of int64 range"),
        (  # all past int63 and none negative: numpy's uint64, said as the same mistake is said above
            [[0, 50, 2**63]],
            [[0.0, 0.0]],
            "input 'categorical': data must hold 3 integers (shape [1, 3]): "
            "data[0][2] is 9223372036854775808, an integer out of int64 range",
        ),
    ],
)
def test_a_refused_value_is_named_where_it_sits(
    client: TestClient, categorical: list, numeric: list, said: str
) -> None:
    """A boolean or a numeric string among the numbers was "data must hold 3 numbers", whatever it was."""
    response = client.post("/v2/models/esmm/infer", json=infer_body(categorical, numeric))
    assert response.status_code == 400 and said in response.json()["error"], response.text


def test_text_ids_are_told_to_be_hashed_or_sent_to_v1_score(client: TestClient) -> None:
    """A BYTES tensor (text ids, as a Triton user sends a string input) was told only "datatype must be INT64":
    the refusal now says what to do instead, and only for BYTES (a wrong numeric type needs no such word)."""
    body = infer_body([["u_3", "5", "ad_1"]], [[0.0, 0.0]])
    body["inputs"][0]["datatype"] = "BYTES"
    response = client.post("/v2/models/esmm/infer", json=body)
    assert response.status_code == 400 and response.json()["field"] == "inputs[0].datatype", response.text
    error = response.json()["error"]
    assert error.startswith("input 'categorical': datatype must be INT64, not 'BYTES': "), error
    assert "hashed" in error and "docs/encoding.md" in error and "POST /v1/score" in error, error
    body["inputs"][0]["datatype"] = "FP32"
    assert client.post("/v2/models/esmm/infer", json=body).json()["error"] == (
        "input 'categorical': datatype must be INT64, not 'FP32'"
    )


def test_infer_skips_a_utf8_byte_order_mark_and_refuses_a_utf16_charset(client: TestClient) -> None:
    """Both go through service/http/body.py as /v1/score's body: the mark skipped, the charset a 415."""
    body = orjson.dumps(infer_body([[0, 50, 74]], [[0.0, 0.0]]))
    expected = client.post("/v2/models/esmm/infer", content=body, headers={"content-type": "application/json"})
    marked = client.post("/v2/models/esmm/infer", content=b"\xef\xbb\xbf" + body)
    assert marked.status_code == 200 and marked.json() == expected.json(), marked.text
    utf16 = body.decode().encode("utf-16")
    refused = client.post(
        "/v2/models/esmm/infer", content=utf16, headers={"content-type": "application/json; charset=UTF-16"}
    )
    assert refused.status_code == 415 and refused.json()["error"].endswith("not 'UTF-16'"), refused.text


def test_deadline_header(client: TestClient) -> None:
    body = {"candidates": [{"user_id": "u", "ad_id": "a", "ad_price": 1.0}]}
    assert client.post("/v1/score", json=body, headers={"X-Request-Timeout-Ms": "500"}).status_code == 200
    response = client.post("/v1/score", json=body, headers={"X-Request-Timeout-Ms": "soon"})
    assert response.status_code == 400 and response.json()["field"] == "X-Request-Timeout-Ms"


def test_metrics_exposition(client: TestClient) -> None:
    """One /v1/score request of three candidates moves the counters by what it did: one request answered,
    three items scored in at least one run, and the 200s counted (the first scrape's own 200 among them)."""

    def scrape() -> dict[str, str]:
        text = client.get("/metrics").text
        assert 'ctr_model_info{model="esmm",version="1",provider="CPUExecutionProvider",sha256="' in text
        return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))

    model = '{model="esmm",version="1"}'
    before = scrape()
    scored = client.post("/v1/score", json={"candidates": [{"user_id": "u", "ad_id": "a", "ad_price": 1.0}] * 3})
    assert scored.status_code == 200
    after = scrape()

    def moved(series: str) -> int:  # a series not yet exposed has counted nothing (run alone: no 200 before)
        return int(after[series]) - int(before.get(series, 0))

    assert moved(f"ctr_inference_request_success_total{model}") == 1
    assert moved(f"ctr_inference_count_total{model}") == 3
    assert moved(f"ctr_inference_exec_count_total{model}") >= 1
    assert 'ctr_inference_batch_size_bucket{model="esmm",version="1",le="+Inf"}' in after
    assert moved('ctr_http_responses_total{code="200"}') == 2  # the score and the first scrape


def test_admin_routes_are_off_without_a_token(client: TestClient) -> None:
    for path in ("models/esmm/load", "index"):
        response = client.post(f"/v2/repository/{path}")
        assert response.status_code == 404 and "routes are off: set CTR_ADMIN_TOKEN" in response.json()["error"]


def test_a_client_s_value_is_quoted_cut_short(client: TestClient) -> None:
    """A 10,000-digit version was quoted whole: over gRPC the status outgrew 8 KB of metadata and the
    client got RESOURCE_EXHAUSTED for what is an INVALID_ARGUMENT."""
    response = client.get("/v2/models/esmm/versions/" + "9" * 2000)
    assert response.status_code == 400 and len(response.json()["error"]) < 200, response.text
    assert response.json()["error"].endswith("not '" + "9" * 35 + "...'")  # 40 characters of it
    unknown = client.get("/v2/models/" + "m" * 2000)
    assert unknown.status_code in (400, 404) and len(unknown.json()["error"]) < 400, unknown.text
