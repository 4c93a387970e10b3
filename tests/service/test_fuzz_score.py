"""Random JSON-ish bodies at /v1/score: the answer is never a 5xx, and errors keep their shape."""

from __future__ import annotations

import json

import orjson
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.score_strategies import candidate, keys, near_valid, values

plausible = st.fixed_dictionaries(
    {"candidates": st.lists(st.one_of(candidate, values), max_size=6)},
    optional={"context": st.one_of(st.dictionaries(keys, values, max_size=4), values)},
)
bodies = st.one_of(
    near_valid,
    plausible,
    values,
    st.dictionaries(st.sampled_from(["context", "candidates", "x"]), values),
)


def check(client: TestClient, raw: bytes) -> None:
    response = client.post("/v1/score", content=raw, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert all(0.0 <= s[k] <= 1.0 for s in body["scores"] for k in ("pctr", "pctcvr", "pcvr"))
    else:
        assert set(body) == {"error", "field"} and body["error"]


@settings(max_examples=300)
@given(body=bodies)
def test_structured_bodies_never_fail_the_server(client: TestClient, body: object) -> None:
    try:
        raw = orjson.dumps(body)
    except TypeError:  # integers past 64 bits: orjson cannot write them; json can
        raw = json.dumps(body).encode()
    check(client, raw)


@settings(max_examples=150)
@given(raw=st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode)))
def test_raw_bytes_never_fail_the_server(client: TestClient, raw: bytes) -> None:
    check(client, raw)


@settings(max_examples=100)
@given(body=bodies)
def test_python_json_with_nan_never_fails_the_server(client: TestClient, body: object) -> None:
    raw = json.dumps(body).replace("0.0", "NaN", 1).encode()
    check(client, raw)
