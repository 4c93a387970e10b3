"""Hypothesis strategies for /v1/score bodies of the tiny ESMM's features: JSON-ish values of any shape
(``scalars``, ``values``, ``candidate``), and bodies shaped right whose values are mostly of their feature's
type (``near_valid``)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.support.tiny_model import SPEC

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
