from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.http.errors import InputError
from service.score.features import (
    _encodable,
    _plain_value_accepted,
    _value_problem,
    accepted_columns,
    check_kinds,
    gather_columns,
)
from service.score.pipeline import held_to_clicks, parse_body
from tests.support.score_strategies import candidate, near_valid, scalars, values
from tests.support.tiny_model import SPEC

KINDS = {f.name: f.kind for f in SPEC.features} | {"both": "conflict"}  # a name two role models disagree on
MAX_CHARS = 6
NULL_OR_ONE = st.sampled_from([None, 1])


def test_a_pctcvr_is_held_to_the_pctr_beside_it() -> None:
    """A ctcvr model without a pcvr output: its pctcvr past pctr (0.3 beside 0.1) was served as it came,
    with a pcvr of 1 that was not pctcvr / pctr; one beside a pctr of 0 likewise."""
    pctr = [0.5, 0.0, 0.1, 0.2, 0.4]
    pctcvr, pcvr = held_to_clicks(pctr, [0.1, 0.05, 0.3, 0.0, -1e-9])
    assert pctcvr == [0.1, 0.0, 0.1, 0.0, 0.0]
    np.testing.assert_allclose(pcvr, [0.2, 0.0, 1.0, 0.0, 0.0])
    assert all(0.0 <= b <= a and (a == 0.0 or c == b / a) for a, b, c in zip(pctr, pctcvr, pcvr, strict=True))


def test_gather_columns_fills_absent_values_with_none() -> None:
    known = frozenset({"a", "b"})
    columns = gather_columns([{"a": 1}, {"b": "x"}, {"a": 2.5, "b": None}], {}, known, max_chars=10)
    assert columns == {"a": [1, None, 2.5], "b": [None, "x", None]}


def test_gather_columns_rejects_a_feature_in_both_places() -> None:
    with pytest.raises(InputError) as raised:
        gather_columns([{"a": 1}], {"a": 2}, frozenset({"a"}), max_chars=10)
    assert (raised.value.status, raised.value.field) == (422, "candidates[0].a")


def test_parse_body_counts_candidates_against_the_limit() -> None:
    context, candidates, versions = parse_body(b'{"candidates": [{}, {}]}', max_candidates=2)
    assert (context, len(candidates), versions) == ({}, 2, None)
    with pytest.raises(InputError) as raised:
        parse_body(b'{"candidates": [{}, {}, {}]}', max_candidates=2)
    assert raised.value.status == 413


@given(
    st.one_of(
        near_valid.map(lambda body: (body["candidates"], body["context"])),
        st.tuples(st.lists(st.one_of(candidate, values), min_size=1, max_size=6), st.just({"hour": 3})),
        st.tuples(st.lists(st.fixed_dictionaries({}, optional={"both": NULL_OR_ONE}), min_size=1), st.none()),
    )
)
def test_the_column_checks_accept_only_what_the_value_checks_accept(request_parts) -> None:
    """``accepted_columns`` (checks a column at a time) never lets through what ``gather_columns`` and
    ``check_kinds`` (value by value, naming the problem) refuse, and gives the same columns."""
    candidates, context = request_parts
    context = context or {}
    fast = accepted_columns(candidates, context, KINDS, MAX_CHARS)
    if fast is None:
        return  # the value-by-value checks decide (and name the problem)
    slow = gather_columns(candidates, context, KINDS, MAX_CHARS)  # raises on anything refused
    check_kinds(slow, KINDS)
    assert fast == slow


@given(st.one_of(scalars, values), st.sampled_from(["categorical", "numeric", "conflict"]))
def test_a_value_accepted_at_once_passes_every_check(value, kind) -> None:
    if _plain_value_accepted(value, kind, MAX_CHARS):
        assert _value_problem(value, MAX_CHARS) is None
        assert value is None or _encodable(kind, value)
