from __future__ import annotations

import numpy as np
import pytest

from service.http.errors import InputError
from service.score.features import gather_columns
from service.score.pipeline import conversion_rates, parse_body


def test_conversion_rates_guard_zero_and_clips() -> None:
    pctr = [0.5, 0.0, 0.1, 0.2]
    pctcvr = [0.1, 0.0, 0.3, 0.0]
    np.testing.assert_allclose(conversion_rates(pctr, pctcvr), [0.2, 0.0, 1.0, 0.0])


def test_gather_columns_fills_absent_values_with_none() -> None:
    known = frozenset({"a", "b"})
    columns = gather_columns([{"a": 1}, {"b": "x"}, {"a": 2.5, "b": None}], {}, known, max_chars=10)
    assert columns == {"a": [1, None, 2.5], "b": [None, "x", None]}


def test_gather_columns_rejects_a_feature_in_both_places() -> None:
    with pytest.raises(InputError) as raised:
        gather_columns([{"a": 1}], {"a": 2}, frozenset({"a"}), max_chars=10)
    assert (raised.value.status, raised.value.field) == (422, "candidates[0].a")


def test_parse_body_counts_candidates_against_the_limit() -> None:
    context, candidates = parse_body(b'{"candidates": [{}, {}]}', max_candidates=2)
    assert (context, len(candidates)) == ({}, 2)
    with pytest.raises(InputError) as raised:
        parse_body(b'{"candidates": [{}, {}, {}]}', max_candidates=2)
    assert raised.value.status == 413
