from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.support.direct_scores import GOOD, direct_scores
from tests.support.openapi import resolved
from tests.support.tiny_model import publish_tiny_esmm

JSON = {"content-type": "application/json"}


def test_scores_match_onnx_runtime(client: TestClient, repository: Path) -> None:
    response = client.post("/v1/score", json=GOOD)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["models"] == {"ctr": {"name": "esmm", "version": 1}, "ctcvr": {"name": "esmm", "version": 1}}
    scores = body["scores"]
    assert len(scores) == 3
    expected = direct_scores(repository)
    for key in ("pctr", "pctcvr"):
        np.testing.assert_allclose([s[key] for s in scores], expected[key], rtol=1e-6)
    for score in scores:
        assert all(0.0 <= score[key] <= 1.0 for key in ("pctr", "pctcvr", "pcvr"))
        assert score["pcvr"] == pytest.approx(score["pctcvr"] / score["pctr"], rel=1e-9)
    np.testing.assert_allclose([s["pcvr"] for s in scores], expected["pcvr"], rtol=1e-5)


def test_context_may_be_omitted_when_nothing_in_it_is_required(client: TestClient) -> None:
    """A body without ``context``, or with ``context: null``, is scored as the same features sent in a
    context: the candidates' own ``user_id`` is used and the absent ``hour`` is null either way."""
    in_context = {"context": {"user_id": "u"}, "candidates": [{"ad_id": 1, "ad_price": 2.0}]}
    expected = client.post("/v1/score", json=in_context).json()["scores"]
    body = {"candidates": [{"user_id": "u", "ad_id": 1, "ad_price": 2.0}]}
    for context in ("omitted", None):
        if context is None:
            body["context"] = None
        response = client.post("/v1/score", json=body)
        assert response.status_code == 200, (context, response.text)
        assert response.json()["scores"] == expected, context


def test_charset_parameter_is_accepted(client: TestClient) -> None:
    """``application/json; charset=utf-8`` is read as plain ``application/json``: the same scores."""
    expected = client.post("/v1/score", content=json.dumps(GOOD), headers=JSON).json()["scores"]
    headers = {"content-type": "application/json; charset=utf-8"}
    response = client.post("/v1/score", content=json.dumps(GOOD), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["scores"] == expected


@pytest.mark.parametrize("charset", ["UTF-8", '"utf-8"', "utf8", "Utf-8", '"UTF-8"'])
def test_a_utf8_charset_is_read_in_any_spelling(client: TestClient, charset: str) -> None:
    headers = {"content-type": f"application/json;charset={charset}"}
    assert client.post("/v1/score", content=json.dumps(GOOD), headers=headers).status_code == 200, charset


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json; charset=utf-16", json.dumps(GOOD).encode("utf-16")),
        ("application/json; Charset=ISO-8859-1", json.dumps(GOOD).encode("latin-1")),
        ('application/json; version=2; charset="utf-16le"', json.dumps(GOOD).encode("utf-16-le")),
    ],
)
def test_a_charset_other_than_utf8_is_415_naming_it(client: TestClient, content_type: str, body: bytes) -> None:
    """The body is read as UTF-8 whatever the header says: a UTF-16 body was a 400 "not valid UTF-8: byte
    0xff", the header that said why ignored."""
    response = client.post("/v1/score", content=body, headers={"content-type": content_type})
    charset = content_type.rsplit("=", 1)[1].strip('"')
    assert response.status_code == 415, response.text
    assert response.json() == {
        "error": f"Content-Type charset must be utf-8 (JSON is UTF-8), not {charset!r}",
        "field": "Content-Type",
    }


def test_a_utf8_byte_order_mark_is_skipped(client: TestClient) -> None:
    """RFC 8259 section 8.1 lets a parser ignore one (.NET and PowerShell write it); orjson refuses it, and the
    body was a 400 "UTF-8 byte order mark (BOM) is not supported". A second one is not JSON."""
    expected = client.post("/v1/score", json=GOOD).json()
    response = client.post("/v1/score", content=b"\xef\xbb\xbf" + json.dumps(GOOD).encode(), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json() == expected
    twice = client.post("/v1/score", content=b"\xef\xbb\xbf" * 2 + json.dumps(GOOD).encode(), headers=JSON)
    assert twice.status_code == 400 and "byte order mark" in twice.json()["error"], twice.text
    broken = client.post("/v1/score", content=b"\xef\xbb\xbf{", headers=JSON)
    assert broken.json()["error"] == "body is not valid JSON: unexpected end of data (line 1 column 2)", broken.text


def test_a_key_named_twice_takes_its_last_value(client: TestClient) -> None:
    """As Go's encoding/json and Jackson read it by default (docs/encoding.md, "The text")."""
    once = client.post("/v1/score", json={"candidates": [{"user_id": "u", "ad_id": 2, "ad_price": 12.5}]}).json()
    twice = b'{"candidates": [{"user_id": "u", "ad_id": 1, "ad_price": 3, "ad_id": 2, "ad_price": 12.5}]}'
    assert client.post("/v1/score", content=twice, headers=JSON).json() == once


def test_the_media_type_is_read_without_regard_to_case(client: TestClient) -> None:
    """A media type is case-insensitive (RFC 9110 section 8.3.1): ``Application/JSON`` is JSON."""
    headers = {"content-type": "Application/JSON"}
    response = client.post("/v1/score", content=json.dumps(GOOD), headers=headers)
    assert response.status_code == 200, response.text


def test_roles_from_different_models(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, name="ctr_only", outputs=("pctr",), seed=5)
    publish_tiny_esmm(tmp_path, seed=6)
    publish_tiny_esmm(tmp_path, seed=7)
    settings = Settings(model_repository=tmp_path, ctr_model="ctr_only", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        body = client.post("/v1/score", json=GOOD).json()
    assert body["models"] == {"ctr": {"name": "ctr_only", "version": 1}, "ctcvr": {"name": "esmm", "version": 2}}
    pctr = direct_scores(tmp_path, "ctr_only", 1)["pctr"]
    pcvr = direct_scores(tmp_path, "esmm", 2)["pcvr"]  # the ctcvr model's own pCVR, and pctcvr = pctr * pcvr
    np.testing.assert_allclose([s["pctr"] for s in body["scores"]], pctr, rtol=1e-6)
    np.testing.assert_allclose([s["pcvr"] for s in body["scores"]], pcvr, atol=1e-7)
    assert all(s["pctcvr"] == s["pctr"] * s["pcvr"] for s in body["scores"])


def test_a_ctcvr_model_without_pcvr_gives_pcvr_by_division(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, name="ctr_only", outputs=("pctr",), seed=5)
    publish_tiny_esmm(tmp_path, name="ctcvr_only", outputs=("pctr", "pctcvr"), seed=6)
    settings = Settings(model_repository=tmp_path, ctr_model="ctr_only", ctcvr_model="ctcvr_only", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        body = client.post("/v1/score", json=GOOD).json()
    pctr = direct_scores(tmp_path, "ctr_only", 1)["pctr"]
    pctcvr = direct_scores(tmp_path, "ctcvr_only", 1)["pctcvr"]
    held = np.minimum(pctcvr, pctr)  # a pctcvr past the pctr beside it is held to it
    np.testing.assert_allclose([s["pctcvr"] for s in body["scores"]], held, rtol=1e-6)
    np.testing.assert_allclose([s["pcvr"] for s in body["scores"]], held / pctr, rtol=1e-5)


def candidates(*extra: dict) -> dict:
    return {"context": {"user_id": "u"}, "candidates": [{"ad_id": 1, "ad_price": 1.0}, *extra]}


BAD_BODIES = [
    # (raw body, status, field, words in the error)
    (b"{", 400, None, "not valid JSON"),
    (b"", 400, None, "empty"),
    (b'{"candidates": [{"ad_id": 1, "ad_price": NaN}]}', 400, None, "NaN"),
    (b'{"candidates": [{"ad_id": 1, "ad_price": Infinity}]}', 400, None, "Infinity"),
    (b'{"candidates": [{"ad_id": 1, "ad_price": -Infinity}]}', 400, None, "Infinity"),
    (b'{"candidates": [{"ad_id": 1, "ad_price": 1e400}]}', 400, None, "number 1e400 is out of range"),
    (b'{"candidates": [{"ad_id": 1, "ad_price": 1' + b"0" * 400 + b"}]}", 400, None, "out of range of a 64-bit float"),
    (b'{"context": {"user_id": "caf\xe9"}, "candidates": []}', 400, None, "not valid UTF-8: byte 0xe9 at offset 28"),
    # JSON.stringify writes an emoji cut in half as its high surrogate alone: orjson cannot read it ("no low
    # surrogate in string" was all the message said)
    (rb'{"context": {"user_id": "x\ud83d"}, "candidates": []}', 400, None, "\\ud83d is a lone UTF-16 surrogate"),
    (rb'{"context": {"user_id": "\ude00"}, "candidates": []}', 400, None, "send the character whole or U+FFFD"),
    (b"[1, 2]", 422, None, "JSON object"),
    (b'"text"', 422, None, "JSON object"),
    (b'{"context": {"user_id": "u"}}', 422, "candidates", "required"),
    (b'{"candidates": []}', 422, "candidates", "empty"),
    (b'{"candidates": {"ad_id": 1}}', 422, "candidates", "list"),
    (b'{"candidates": [1]}', 422, "candidates[0]", "object"),
    (b'{"context": [], "candidates": [{"ad_id": 1}]}', 422, "context", "object"),
    (b'{"candidate": [{"ad_id": 1}]}', 422, "candidate", "unknown"),
]


@pytest.mark.parametrize(("raw", "status", "field", "words"), BAD_BODIES)
def test_malformed_bodies(client: TestClient, raw: bytes, status: int, field: str | None, words: str) -> None:
    response = client.post("/v1/score", content=raw, headers=JSON)
    assert response.status_code == status, response.text
    assert response.json() == {"error": response.json()["error"], "field": field}
    assert words in response.json()["error"]


BAD_FEATURES = [
    # (body, field, words in the error)
    ({"candidates": [{"ad_id": 1, "ad_price": 1.0}]}, "context.user_id", "required"),
    ({"context": {"user_id": None}, "candidates": [{"ad_id": 1, "ad_price": 1.0}]}, "context.user_id", "required"),
    ({"context": {"user_id": "u"}, "candidates": [{"ad_id": 1}]}, "candidates[0].ad_price", "required"),
    (candidates({"ad_id": 2}), "candidates[1].ad_price", "required"),
    (candidates({"ad_id": 2, "ad_price": None}), "candidates[1].ad_price", "required"),
    ({"context": {"user_id": "u", "foo": 1}, "candidates": [{"ad_id": 1}]}, "context.foo", "not a feature"),
    (candidates({"ad_id": 2, "ad_price": 1, "foo": 1}), "candidates[1].foo", "not a feature"),
    ({"context": {"user_id": "u", "ad_id": 1}, "candidates": [{"ad_id": 1}]}, "candidates[0].ad_id", "both"),
    (candidates({"ad_id": 2, "ad_price": "cheap"}), "candidates[1].ad_price", "must be a number"),
    (candidates({"ad_id": 2.5, "ad_price": 1}), "candidates[1].ad_id", "string or an integer"),
    (candidates({"ad_id": True, "ad_price": 1}), "candidates[1].ad_id", "boolean"),
    (candidates({"ad_id": 2, "ad_price": False}), "candidates[1].ad_price", "boolean"),
    (candidates({"ad_id": 2, "ad_price": [1]}), "candidates[1].ad_price", "list"),
    (candidates({"ad_id": {"id": 2}, "ad_price": 1}), "candidates[1].ad_id", "object"),
    (candidates({"ad_id": 2, "ad_price": 1e39}), "candidates[1].ad_price", "out of range"),
    (candidates({"ad_id": "x" * 2000, "ad_price": 1}), "candidates[1].ad_id", "longer than"),
    ({"context": {"user_id": ["u"]}, "candidates": [{"ad_id": 1, "ad_price": 1}]}, "context.user_id", "list"),
    ({"context": {"user_id": {}}, "candidates": [{"ad_id": 1, "ad_price": 1}]}, "context.user_id", "object"),
    ({"context": {"user_id": 1.5}, "candidates": [{"ad_id": 1, "ad_price": 1}]}, "context.user_id", "string"),
    ({"context": {"user_id": True}, "candidates": [{"ad_id": 1, "ad_price": 1}]}, "context.user_id", "boolean"),
    ({"context": {"user_id": "u", "ad_price": "x"}, "candidates": [{"ad_id": 1}]}, "context.ad_price", "number"),
    ({"context": {"user_id": "u", "ad_price": -1e39}, "candidates": [{"ad_id": 1}]}, "context.ad_price", "range"),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD_FEATURES)
def test_bad_features_name_the_field(client: TestClient, body: dict, field: str, words: str) -> None:
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert words in response.json()["error"]


def test_a_feature_in_context_and_in_several_candidates_is_refused(client: TestClient) -> None:
    """A feature given both in context and in the candidates is a 422 naming the candidate's feature with
    several candidates too (the column-wise checks), as it is with one."""
    body = {"context": {"user_id": "u", "ad_id": 1}, "candidates": [{"ad_id": 1, "ad_price": 1.0}, {"ad_price": 2.0}]}
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "candidates[0].ad_id"
    assert "both" in response.json()["error"]


def test_a_string_of_the_longest_length_passes_and_one_char_more_is_refused(
    client: TestClient, settings: Settings
) -> None:
    """With several candidates (checked a column at a time) a categorical string of exactly
    CTR_MAX_STRING_CHARS is scored and one character more is a 422 naming it, as it is value by value."""
    longest = "x" * settings.max_string_chars
    assert client.post("/v1/score", json=candidates({"ad_id": longest, "ad_price": 1})).status_code == 200
    response = client.post("/v1/score", json=candidates({"ad_id": longest + "x", "ad_price": 1}))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "candidates[1].ad_id"
    assert "longer than" in response.json()["error"]


def test_too_many_candidates(client: TestClient, settings: Settings) -> None:
    rows = [{"ad_id": i, "ad_price": 1.0} for i in range(settings.max_candidates + 1)]
    body = {"context": {"user_id": "u"}, "candidates": rows}
    response = client.post("/v1/score", json=body)
    assert response.status_code == 413
    assert response.json()["field"] == "candidates"
    body["candidates"].pop()
    assert client.post("/v1/score", json=body).status_code == 200


def test_body_over_the_limit(client: TestClient, settings: Settings) -> None:
    raw = b'{"candidates": [' + b" " * settings.max_body_bytes + b"]}"
    response = client.post("/v1/score", content=raw, headers=JSON)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_streamed_body_over_the_limit_without_content_length(client: TestClient, settings: Settings) -> None:
    def chunks():  # a generator body is sent chunked, with no Content-Length
        yield b'{"candidates": ['
        for _ in range(settings.max_body_bytes // 1024 + 1):
            yield b" " * 1024
        yield b"]}"

    response = client.post("/v1/score", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["field"] is None


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/score", content=b'{"candidates": [{"ad_id": 1}]}', headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_unknown_route_and_method_answer_the_error_shape(client: TestClient) -> None:
    assert client.get("/v1/nothing").json() == {
        "error": "no route GET /v1/nothing; GET / lists the routes served, /docs documents them",
        "field": None,
    }
    response = client.get("/v1/score")
    assert response.status_code == 405
    assert response.json() == {"error": "GET is not allowed on /v1/score; it takes POST", "field": None}
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "path"), [("DELETE", "/v1/models"), ("PUT", "/v2/health/ready"), ("POST", "/metrics")]
)
def test_a_405_allows_head_wherever_it_allows_get(client: TestClient, method: str, path: str) -> None:
    """The app answers HEAD wherever GET (RFC 9110 section 9.1); a 405's ``Allow`` said only GET."""
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["error"] == f"{method} is not allowed on {path}; it takes GET, HEAD"  # "Method Not Allowed"
    assert client.head(path).status_code == 200


def test_openapi_documents_the_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/score"]["post"]
    request = operation["requestBody"]["content"]["application/json"]
    assert set(resolved(schema, request["schema"])["properties"]) == {"context", "candidates", "versions"}
    assert request["example"]["candidates"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(operation["responses"])
    assert "ScoreResponse" in schema["components"]["schemas"]
    assert "ErrorResponse" in schema["components"]["schemas"]


def test_mounted_under_a_prefix_the_fastapi_route_answers_the_same(settings: Settings, client: TestClient) -> None:
    """The plain ASGI shortcut serves POST /v1/score at the root; mounted under a prefix, the registered
    FastAPI route answers instead, through the same scoring code, with the same body."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    service = create_app(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        async with service.router.lifespan_context(service):
            yield

    parent = FastAPI(lifespan=lifespan)
    parent.mount("/api", service)
    with TestClient(parent) as mounted:
        via_route = mounted.post("/api/v1/score", content=json.dumps(GOOD), headers=JSON)
        refused = mounted.post("/api/v1/score", content=b"{}", headers={"content-type": "text/plain"})
    direct = client.post("/v1/score", content=json.dumps(GOOD), headers=JSON)
    assert via_route.status_code == 200 and via_route.json() == direct.json()
    assert refused.status_code == 415 and refused.json()["field"] == "Content-Type"


def test_the_score_handler_enforces_the_body_limit_on_declared_and_streamed_bodies(client: TestClient) -> None:
    big = b'{"candidates": [' + b'{"ad_id": "a", "ad_price": 1.0},' * 3000 + b"{}]}"  # over the 64 KiB limit
    declared = client.post("/v1/score", content=big, headers=JSON)
    streamed = client.post("/v1/score", content=iter([big[:40_000], big[40_000:]]), headers=JSON)
    for response in (declared, streamed):
        assert response.status_code == 413 and "larger than" in response.json()["error"]
    chunked_ok = client.post(
        "/v1/score", content=iter([json.dumps(GOOD).encode()[:20], json.dumps(GOOD).encode()[20:]]), headers=JSON
    )
    assert chunked_ok.status_code == 200 and len(chunked_ok.json()["scores"]) == 3
    assert client.get("/v1/score").status_code == 405


def test_a_whole_number_float_is_the_integer_it_is_for_a_categorical_feature(client: TestClient) -> None:
    """``21.0`` for a categorical feature was a 422 ("must be a string or an integer") where JSON does not
    tell it from ``21`` and the trainer reads a log's whole-number floats as integers (training/logs/column_arrays.py):
    now scored as ``21``, in the context and in candidates, alone or among others."""
    floats = {
        "context": {"user_id": "u_1", "hour": 21.0},
        "candidates": [
            {"ad_id": "ad_7", "ad_price": 12.5},
            {"ad_id": 3e0, "ad_price": 3, "ad_quality": 0.9},
            {"ad_id": "ad_7", "ad_price": 0.0, "ad_quality": None},
        ],
    }
    assert (
        client.post("/v1/score", json=floats).json()["scores"] == client.post("/v1/score", json=GOOD).json()["scores"]
    )
    alone = {"context": {"user_id": -0.0}, "candidates": [{"ad_id": 3.0, "ad_price": 3}]}
    as_integers = {"context": {"user_id": 0}, "candidates": [{"ad_id": 3, "ad_price": 3}]}
    assert client.post("/v1/score", json=alone).json() == client.post("/v1/score", json=as_integers).json()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (21.5, "must be a string or an integer, not 21.5"),
        (2.0**64, "1.8446744073709552e+19 was read as a float (a JSON integer past 64 bits, or written with a"),
        (2**64, "1.8446744073709552e+19 was read as a float (a JSON integer past 64"),  # 2**64 - 1 is scored
        (-(2**63) - 1, "-9.223372036854776e+18 was read as a float (a JSON integer past 64 bits"),
        (2.0**53 + 2, "; 9007199254740994.0 was read as a float"),  # %g said 9.0072e+15: the digits cut off
        (2.0**53, "; 9007199254740992.0 was read as a float"),  # 2**53 + 1 reads as it: was scored as 2**53
    ],
    ids=[
        "fraction",
        "float-past-2**53",
        "integer-past-64-bits",
        "negative-past-64-bits",
        "float-2**53+2",
        "float-2**53",
    ],
)
def test_a_categorical_number_that_is_no_integer_is_422_saying_why(
    client: TestClient, value: float, words: str
) -> None:
    for body, field in [
        ({"context": {"user_id": "u"}, "candidates": [{"ad_id": value, "ad_price": 1}]}, "candidates[0].ad_id"),
        (candidates({"ad_id": value, "ad_price": 1}), "candidates[1].ad_id"),
        ({"context": {"user_id": value}, "candidates": [{"ad_id": 1, "ad_price": 1}]}, "context.user_id"),
    ]:
        reply = client.post("/v1/score", json=body)
        assert reply.status_code == 422 and reply.json()["field"] == field, reply.text
        assert words in reply.json()["error"], reply.text
