"""Random JSON-ish bodies at /v1/score: the answer is never a 5xx, and errors keep their shape."""

from __future__ import annotations

import json

import orjson
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.tiny_model import SPEC

NAMES = [f.name for f in SPEC.features]
keys = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e40, max_value=1e40),
    st.text(max_size=12),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3))
candidate = st.dictionaries(keys, st.one_of(scalars, values), max_size=6)
plausible = st.fixed_dictionaries(
    {"candidates": st.lists(st.one_of(candidate, values), max_size=6)},
    optional={"context": st.one_of(st.dictionaries(keys, values, max_size=4), values)},
)
# Bodies shaped right, each value mostly of its feature's type, sometimes any scalar: these reach the
# encoder and the model.
category = st.one_of(st.text(max_size=12), st.integers(min_value=-(2**64), max_value=2**64))
number = st.one_of(st.floats(min_value=-1e40, max_value=1e40), st.integers(min_value=-(2**64), max_value=2**64))
category, number = st.one_of(category, category, category, scalars), st.one_of(number, number, number, scalars)
near_valid = st.fixed_dictionaries(
    {
        "context": st.fixed_dictionaries({"user_id": category}, optional={"hour": category}),
        "candidates": st.lists(
            st.fixed_dictionaries({"ad_id": category, "ad_price": number}, optional={"ad_quality": number}),
            min_size=1,
            max_size=5,
        ),
    }
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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_structured_bodies_never_fail_the_server(client: TestClient, body: object) -> None:
    try:
        raw = orjson.dumps(body)
    except TypeError:  # integers past 64 bits: orjson cannot write them; json can
        raw = json.dumps(body).encode()
    check(client, raw)


@settings(max_examples=150, deadline=None)
@given(raw=st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode)))
def test_raw_bytes_never_fail_the_server(client: TestClient, raw: bytes) -> None:
    check(client, raw)


@settings(max_examples=100, deadline=None)
@given(body=bodies)
def test_python_json_with_nan_never_fails_the_server(client: TestClient, body: object) -> None:
    raw = json.dumps(body).replace("0.0", "NaN", 1).encode()
    check(client, raw)
