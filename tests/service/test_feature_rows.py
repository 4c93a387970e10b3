"""Batched encoding (service/feature_rows.py): whatever ``prepare`` accepts, encoded together with other
accepted requests, never fails and gives each request exactly the tensors it gets alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.http.errors import InputError
from service.models.manager import load_snapshot
from service.models.snapshot import ServingModels
from service.score.pipeline import PreparedRequest, prepare
from service.settings import Settings
from tests.support.score_strategies import near_valid


@pytest.fixture(scope="module")
def served(settings: Settings) -> tuple[ServingModels, Settings]:
    return load_snapshot(settings), settings


def accepted(bodies: list[dict], models: ServingModels, settings: Settings) -> list[PreparedRequest]:
    prepared = []
    for body in bodies:
        try:
            prepared.append(prepare(json.dumps(body).encode(), models, settings))
        except InputError:
            continue
    return prepared


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(near_valid, min_size=1, max_size=40), st.data())
def test_accepted_requests_encode_together_as_they_do_alone(served, bodies, data) -> None:
    models, config = served
    requests = accepted(bodies, models, config)
    if not requests:
        return
    model = models.model("esmm")
    # each request whole, or a slice of it, as the batcher splits requests over batches
    parts = []
    for request in requests:
        start = data.draw(st.integers(0, request.n_candidates - 1))
        stop = data.draw(st.integers(start + 1, request.n_candidates))
        parts.append((request, start, stop))
    batch = model.encode([(r.rows, start, stop) for r, start, stop in parts])
    for name in ("categorical", "numeric"):
        alone = [r.encoded(model)[name][start:stop] for r, start, stop in parts]
        assert np.array_equal(batch[name], np.concatenate(alone))


def test_many_requests_take_the_column_path_and_agree(served) -> None:
    """Over SMALL_BATCH_ROWS rows the encoder goes column-wise; ints from -2**63 to 2**64-1 (what JSON
    parsing allows) mixed in one column stay ints, never floats."""
    models, config = served
    bodies = [
        {"context": {"user_id": user}, "candidates": [{"ad_id": ad, "ad_price": 3}] * 5}
        for user, ad in [(-1, 2**63), ("u", -(2**63)), (2**64 - 1, "x")] * 10
    ]
    requests = accepted(bodies, models, config)
    assert len(requests) == len(bodies)
    model = models.model("esmm")
    batch = model.encode([(r.rows, 0, r.n_candidates) for r in requests])
    for name in ("categorical", "numeric"):
        assert np.array_equal(batch[name], np.concatenate([r.encoded(model)[name] for r in requests]))


def test_the_first_request_without_batching_keeps_its_context_scalar(served) -> None:
    models, config = served
    (request,) = accepted(
        [{"context": {"user_id": "u"}, "candidates": [{"ad_id": "a", "ad_price": 1.0}]}], models, config
    )
    assert request.encoded(models.model("esmm"))["categorical"].shape == (1, 3)


def test_large_requests_encoded_one_by_one_stack_like_the_batch(served) -> None:
    """Requests of ALONE_ROWS candidates and more are encoded each alone (context broadcast) and stacked:
    the same tensors as one call over the batch's rows, slices included."""
    models, config = served
    candidates = [{"ad_id": f"a{i}", "ad_price": i} for i in range(40)]
    bodies = [{"context": {"user_id": f"u{k}", "hour": k}, "candidates": candidates} for k in range(3)]
    requests = accepted(bodies, models, config)
    model = models.model("esmm")
    slices = [(requests[0], 0, 40), (requests[1], 5, 40), (requests[2], 0, 33)]
    parts = [(r.rows, start, stop) for r, start, stop in slices]
    stacked = model.encode(parts)  # 108 rows in 3 parts: one by one
    together = model.encode(parts + [(requests[0].rows, 0, 1)] * 3)  # 111 rows in 6 parts: one call
    for name in ("categorical", "numeric"):
        alone = np.concatenate([r.encoded(model)[name][start:stop] for r, start, stop in slices])
        assert np.array_equal(stacked[name], alone)
        assert np.array_equal(together[name][:108], alone)


def test_large_requests_reach_the_batcher_encoded_and_small_ones_raw(served) -> None:
    """``prepare`` encodes a request of ALONE_ROWS candidates or more (the batch thread then only runs the
    model) and leaves a smaller one's rows to be encoded with its batch; a batch mixing the two gives
    each request its own tensors, slices included."""
    from service.batching.policy import Slice, Work
    from service.score.features import ALONE_ROWS, FeatureRows

    models, config = served
    model = models.model("esmm")
    large_body = {"context": {"user_id": "u1"}, "candidates": [{"ad_id": f"a{i}", "ad_price": i} for i in range(40)]}
    small_body = {"context": {"user_id": "u2"}, "candidates": [{"ad_id": f"b{i}", "ad_price": 2.0} for i in range(3)]}
    large, small = accepted([large_body, small_body], models, config)
    assert large.n_candidates >= ALONE_ROWS > small.n_candidates
    assert not isinstance(large.inputs[model], FeatureRows) and small.inputs[model] is small.rows

    def from_rows(request: PreparedRequest) -> dict:
        return model.encode([(request.rows, 0, request.n_candidates)])

    assert large.encoded(model) is large.inputs[model]  # not encoded twice
    for name in ("categorical", "numeric"):
        assert np.array_equal(large.inputs[model][name], from_rows(large)[name])
    works = [Work(r.inputs[model], r.n_candidates, deadline=1.0, enqueued=0.0) for r in (small, large, small)]
    batch = model.collate([Slice(works[0], 0, 3), Slice(works[1], 5, 40), Slice(works[2], 1, 2)])
    for name in ("categorical", "numeric"):
        expected = [from_rows(small)[name], from_rows(large)[name][5:40], from_rows(small)[name][1:2]]
        assert np.array_equal(batch[name], np.concatenate(expected))


def test_a_later_row_alone_in_a_batch_of_one_row_slices_gets_its_own_candidate(served) -> None:
    """A 2-candidate request split at a batch boundary, its second row batched with a 1-candidate request
    (one row from each part: one pick per value), encodes that second row's candidate, not its first
    one's: the row index each one-row slice starts at went unpinned (hypothesis rarely draws such a batch),
    and the wrong one silently scored another ad."""
    models, config = served
    model = models.model("esmm")
    two = {
        "context": {"user_id": "u1"},
        "candidates": [{"ad_id": "a1", "ad_price": 1.5}, {"ad_id": "a2", "ad_price": 9.0}],
    }
    one = {"context": {"user_id": "u2"}, "candidates": [{"ad_id": "b1", "ad_price": 4.0}]}
    a, b = accepted([two, one], models, config)
    batch = model.encode([(a.rows, 1, 2), (b.rows, 0, 1)])
    assert set(batch) == set(a.encoded(model)) == {"categorical", "numeric"}
    for name in batch:
        assert not np.array_equal(a.encoded(model)[name][0], a.encoded(model)[name][1])  # the two ads differ
        assert np.array_equal(batch[name], np.concatenate([a.encoded(model)[name][1:2], b.encoded(model)[name]]))
