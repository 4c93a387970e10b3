"""The OpenAPI document against what the routes answer: what a client generated from it (openapi-generator)
would send and expect is what the service takes and gives."""

from __future__ import annotations

import re

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.http.openapi_for_generators import for_generators
from service.settings import Settings
from tests.support.openapi import resolved
from tests.support.v2_bodies import infer_body

VERSIONED = ("/v2/models/{name}/versions/{version}", "/v2/models/{name}/versions/{version}/ready")
INFER = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict:
    return client.get("/openapi.json").json()


def operation(document: dict, path: str, method: str = "post") -> dict:
    return document["paths"][path][method]


def test_no_response_is_fastapis_validation_shape(document: dict) -> None:
    """Every route with a path parameter listed FastAPI's 422 ``{"detail": [...]}``, which the service never
    answers: every error is ``{"error", "field"}``."""
    assert "HTTPValidationError" not in str(document)
    for path, operations in document["paths"].items():
        for method, entry in operations.items():
            for status, response in entry["responses"].items():
                if status.startswith("4") or status == "default":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    assert "422" not in operation(document, "/v2/models/{name}", "get")["responses"]


def test_a_versions_400_says_so_and_is_answered(client: TestClient, document: dict) -> None:
    """The 400 description was malformed JSON's on every route, GET routes with a version too."""
    bad_body = operation(document, "/v1/score")["responses"]["400"]["description"]
    for path in VERSIONED:
        description = operation(document, path, "get")["responses"]["400"]["description"]
        assert "version" in description and "JSON" not in description
        for version in ("abc", "01", "0"):
            response = client.get(path.replace("{name}", "esmm").replace("{version}", version))
            assert response.status_code == 400 and response.json()["field"] == "version", (path, version)
    assert "X-Request-Timeout-Ms" in bad_body and "JSON" in bad_body


@pytest.mark.parametrize("path", ["/v1/score", "/v1/similarity", *INFER])
def test_the_deadline_header_is_declared_where_it_is_read(client: TestClient, document: dict, path: str) -> None:
    (parameter,) = [p for p in operation(document, path)["parameters"] if p["name"] == "X-Request-Timeout-Ms"]
    assert parameter["in"] == "header" and parameter["schema"] == {"type": "number", "exclusiveMinimum": 0}
    for value in ("0", "-5", "abc"):
        response = client.post(
            path.replace("{name}", "esmm").replace("{version}", "1"), json={}, headers={"X-Request-Timeout-Ms": value}
        )
        assert response.status_code in (400, 503), response.text  # 503: no retrieval model here
        if response.status_code == 400:
            assert response.json()["field"] == "X-Request-Timeout-Ms"


def test_infer_documents_the_binary_extension_it_speaks(client: TestClient, document: dict) -> None:
    for path in INFER:
        entry = operation(document, path)
        assert set(entry["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
        assert "Inference-Header-Content-Length" in {p["name"] for p in entry["parameters"]}
        ok = entry["responses"]["200"]
        assert set(ok["content"]) == {"application/json", "application/octet-stream"}
        assert "Inference-Header-Content-Length" in ok["headers"]
        unread = entry["responses"]["415"]["description"]
        assert "x-www-form-urlencoded" in unread and "Content-Encoding" in unread
    body = infer_body([[0, 50, 74]], [[0.0, 0.0]], parameters={"binary_data_output": True})
    for tensor in body["inputs"]:
        tensor["parameters"] = {"binary_data_size": 24 if tensor["datatype"] == "INT64" else 8}
        del tensor["data"]
    header = orjson.dumps(body)
    raw = np.array([0, 50, 74], "<i8").tobytes() + np.array([0.0, 0.0], "<f4").tobytes()
    response = client.post(
        "/v2/models/esmm/infer",
        content=header + raw,
        headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert int(response.headers["inference-header-content-length"]) < len(response.content)
    assert client.post("/v2/models/esmm/infer", content=b"{}", headers={"Content-Encoding": "br"}).status_code == 415


def test_a_request_datatype_is_one_the_service_takes(client: TestClient, document: dict) -> None:
    """FP64 was in the request's enum and always refused (outputs may be FP64: no load check holds a graph's
    outputs to float32)."""
    tensor = resolved(document, operation(document, INFER[0])["requestBody"]["content"]["application/json"]["schema"])
    datatype = tensor["properties"]["inputs"]["items"]["properties"]["datatype"]
    assert datatype["enum"] == ["INT64", "FP32"]
    body = infer_body([[0, 50, 74]], [[0.0, 0.0]])
    body["inputs"][1]["datatype"] = "FP64"
    assert client.post("/v2/models/esmm/infer", json=body).status_code == 400


def test_the_protocols_headers_are_declared_on_every_operation(document: dict) -> None:
    """A client generated from the document knew neither the X-Request-ID every answer carries (and a request
    may send) nor a 503's Retry-After: the protocol reads and writes them below FastAPI."""
    operations = [entry for path_item in document["paths"].values() for entry in path_item.values()]
    assert len(operations) >= 12
    for entry in operations:
        said = [p for p in entry["parameters"] if p["name"] == "X-Request-ID"]
        assert len(said) == 1 and said[0]["in"] == "header" and said[0]["schema"]["pattern"] == "^[!-~]{1,200}$"
        for status, response in entry["responses"].items():
            assert "X-Request-ID" in response["headers"], status
            assert ("Retry-After" in response["headers"]) == (status == "503"), status
    assert "Retry-After" in operation(document, "/v1/score")["responses"]["503"]["headers"]


def references(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in references(v)]
    return [r for item in node for r in references(item)] if isinstance(node, list) else []


def test_the_bodies_read_by_hand_are_components_every_reference_resolves(document: dict) -> None:
    """Inlined, V2 infer's body became two sets of classes in a generated client (one per route), and one
    route's passed to the other's call went as no body at all; a ``#/$defs/...`` left inside resolved nowhere."""
    bodies = {
        path: operation(document, path)["requestBody"]["content"]["application/json"]["schema"]
        for path in ("/v1/score", "/v1/similarity", *INFER)
    }
    assert bodies["/v1/score"] == {"$ref": "#/components/schemas/ScoreRequest"}
    assert bodies[INFER[0]] == bodies[INFER[1]] == {"$ref": "#/components/schemas/InferRequest"}
    assert "RepositoryIndexRequest" not in document["components"]["schemas"]  # the admin routes are off here
    found = references(document)
    assert found and all(r.startswith("#/components/schemas/") for r in found)
    assert {r.removeprefix("#/components/schemas/") for r in found} <= set(document["components"]["schemas"])


def test_score_documents_the_versions_an_online_experiment_pins(document: dict) -> None:
    """``versions`` (model name -> served version) is in the body a generated client sends, described, with an
    example, and its 404 (a version not served) is declared; the model list names each version's sha256."""
    schema = resolved(document, operation(document, "/v1/score")["requestBody"]["content"]["application/json"])
    versions = schema["schema"]["properties"]["versions"]
    assert "served versions" in versions["description"] and versions["examples"] == [{"esmm": 1}]
    pinned = next(option for option in versions["anyOf"] if option.get("type") == "object")
    assert pinned["additionalProperties"] == {"type": "integer", "minimum": 0, "format": "int64"}
    assert "not served" in operation(document, "/v1/score")["responses"]["404"]["description"]
    listed = document["components"]["schemas"]["ModelDescription"]["properties"]
    assert {"sha256", "version_sha256"} <= set(listed)


def test_an_answer_of_several_media_types_lists_json_first(document: dict) -> None:
    """Generators take an answer's first media type: V2 infer's JSON answer came back as raw bytes."""
    for path in INFER:
        content = operation(document, path)["responses"]["200"]["content"]
        assert list(content) == ["application/json", "application/octet-stream"]
        assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/InferResponse"}


def test_every_integer_says_its_width(document: dict) -> None:
    """Without a format, the Java generator typed the statistics' epoch milliseconds and nanosecond totals as
    32-bit integers."""

    def integers(node: object) -> list[dict]:
        if isinstance(node, dict):
            return [node] * (node.get("type") == "integer") + [i for v in node.values() for i in integers(v)]
        return [i for item in node for i in integers(item)] if isinstance(node, list) else []

    found = integers(document)
    assert len(found) > 10 and all(schema.get("format") == "int64" for schema in found)


def test_every_operation_is_named_by_its_handler_and_declares_an_error(document: dict) -> None:
    """FastAPI's ids added the path and method (``infer_version_v2_models__name__versions__version__infer_post``),
    a generated client's method names; an operation with no error declared answered the server's 400 for a bad
    X-Request-ID (tests/service/test_request_head.py) that a generated client could not parse."""
    ids = [entry["operationId"] for path_item in document["paths"].values() for entry in path_item.values()]
    assert len(ids) == len(set(ids)) and {"score", "infer", "infer_version", "similarity", "live"} <= set(ids)
    assert all(re.fullmatch(r"[a-z][a-z_]*", name) for name in ids), ids
    for path_item in document["paths"].values():
        for entry in path_item.values():
            assert entry["responses"]["default"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }


def test_a_401_declares_the_scheme_it_names(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"admin_token": SecretStr("t" * 32)}))) as admin:
        document = admin.get("/openapi.json").json()
        answer = admin.post("/v2/repository/index")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert "RepositoryIndexRequest" in document["components"]["schemas"]  # its body, with its route
    declared = document["paths"]["/v2/repository/index"]["post"]["responses"]["401"]["headers"]
    assert set(declared) == {"WWW-Authenticate", "X-Request-ID"}


def schemas_in(node: object) -> list[dict]:
    if isinstance(node, dict):
        return [node] + [s for v in node.values() for s in schemas_in(v)]
    return [s for item in node for s in schemas_in(item)] if isinstance(node, list) else []


def test_a_number_is_written_as_one(client: TestClient, document: dict) -> None:
    """pydantic's ``int | float`` was ``anyOf: [integer, number]`` (the values of ``number``): nested in V2 infer's
    anyOf of flat or nested rows, openapi-generator's python client made it a wrapper class its own from_dict
    refused every plain value for, and no JSON infer request could be built. An INT64 tensor's integers still
    infer, and a union with a bound or a format in a member is left as it is."""
    data = document["components"]["schemas"]["InferInput"]["properties"]["data"]["anyOf"]
    assert data[0] == {"type": "array", "items": {"type": "number"}}
    assert data[1] == {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
    for schema in schemas_in(document):
        members = schema.get("anyOf", [])
        assert not (len(members) > 1 and all(m.get("type") in ("integer", "number") for m in members)), schema
    answer = client.post("/v2/models/esmm/infer", json=infer_body([[0, 50, 74], [1, 51, 75]], [[0.5, 1.0]] * 2))
    assert answer.status_code == 200, answer.text
    bounded = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "number"}]}
    assert for_generators({"paths": {}, "bounded": bounded})["bounded"]["anyOf"][0]["minimum"] == 0


def test_no_boolean_is_held_to_one_value(settings: Settings) -> None:
    """``Literal[True]`` was ``const: true``, which openapi-generator's python client (7.26.0) read as the string
    enum ``'true'``: every successful unload's answer raised in it (``enum: [true]`` reads the same). The value
    is said in the description, and the answer still carries it."""
    with TestClient(create_app(settings.model_copy(update={"admin_token": SecretStr("t" * 32)}))) as admin:
        document = admin.get("/openapi.json").json()
        unloaded = admin.post("/v2/repository/models/esmm/unload", headers={"Authorization": "Bearer " + "t" * 32})
        reloaded = admin.post("/v2/repository/models/esmm/load", headers={"Authorization": "Bearer " + "t" * 32})
    assert not [s for s in schemas_in(document) if "const" in s or (s.get("type") == "boolean" and "enum" in s)]
    schema = document["components"]["schemas"]["UnloadedModel"]["properties"]["unloaded"]
    assert schema == {"type": "boolean", "title": "Unloaded", "description": "Always true."}
    assert unloaded.status_code == 200 and unloaded.json() == {"name": "esmm", "unloaded": True}
    assert reloaded.status_code == 200, reloaded.text
