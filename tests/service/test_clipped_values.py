"""Request values outside a model's training range: clipped to it, so the answer is the model's at the edge
of what it was trained on, and counted by feature in /metrics (a unit mistake of an ad server shows there).

Before, a price in cents or an age in days was standardised to hundreds of standard deviations and the
network answered a saturated pctr of 0.0 or 1.0 (a bad candidate winning every auction), in a 200, with
nothing anywhere to say so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.encoder import FeatureEncoder
from service.app import create_app
from service.models.loader import load_newest
from service.settings import Settings
from tests.support.tiny_model import RANGED, publish_tiny_esmm
from tests.support.v2_bodies import infer_body


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root, spec=RANGED)
    settings = Settings(model_repository=root, ctr_model="esmm", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        yield client


def scores(client: TestClient, *candidates: dict) -> list[dict]:
    response = client.post("/v1/score", json={"context": {"user_id": "u1"}, "candidates": list(candidates)})
    assert response.status_code == 200, response.text
    return response.json()["scores"]


def clipped(client: TestClient, feature: str) -> int:
    series = f'ctr_feature_values_clipped_total{{model="esmm",version="1",feature="{feature}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(series)]
    assert len(lines) == 1, f"no {series.strip()} series"
    return int(lines[0].rsplit(" ", 1)[1])


def test_a_value_past_the_training_range_scores_as_the_edge_and_is_counted(client: TestClient) -> None:
    assert clipped(client, "ad_price") == 0 and clipped(client, "ad_quality") == 0  # each series from the start
    edge = scores(client, {"ad_id": "a1", "ad_price": 30.0, "ad_quality": 0.9}, {"ad_id": "a1", "ad_price": 1.0})
    assert clipped(client, "ad_price") == 0  # the edges themselves are inside
    far = scores(client, {"ad_id": "a1", "ad_price": 2999.0, "ad_quality": 0.9}, {"ad_id": "a1", "ad_price": -5e30})
    assert far == edge
    assert clipped(client, "ad_price") == 2 and clipped(client, "ad_quality") == 0
    inside = scores(client, {"ad_id": "a1", "ad_price": 20.0, "ad_quality": 0.9})
    assert inside != edge[:1] and clipped(client, "ad_price") == 2  # values inside change the answer, uncounted


def test_a_version_without_ranges_says_so_at_its_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Exported before ranges were kept, its clipped-values series stays at 0 whatever a value's unit:
    the load says why, once, rather than a healthy-looking 0 alone."""
    publish_tiny_esmm(tmp_path)  # the tiny spec's stats: mean and std alone
    publish_tiny_esmm(tmp_path, name="ranged", spec=RANGED)
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False)
    with caplog.at_level(logging.WARNING, logger="service.models.loader"):
        load_newest(settings, "esmm")
        load_newest(settings, "ranged")
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "model esmm version 1 has no training range for ['ad_price', 'ad_quality']" in said[0]


def test_a_v2_numeric_value_past_the_training_range_is_clipped_as_v1_clips_it(client: TestClient) -> None:
    """V2 infer takes standardised values and ran them as sent: -1000 and 1000 (inside the ±1e6 sanity bound)
    answered a pctr of 3.8e-14 and 1.0, where /v1/score answers any far raw value as the value at the edge.
    Now V2 clips each numeric column to the encoder's bounds: the same rows score alike on both routes, and
    V2's clipped values are counted as /v1's are (the bounds themselves are inside, uncounted)."""
    far = [
        {"ad_id": "a1", "ad_price": 5e30, "ad_quality": 7e20},
        {"ad_id": "a2", "ad_price": -5e30, "ad_quality": -1e9},
    ]
    edge = scores(client, *far)
    columns = {"user_id": "u1", **{name: [row[name] for row in far] for name in far[0]}}
    encoded = FeatureEncoder(RANGED).encode(columns, len(far))  # its numeric columns: the bounds themselves
    for numeric, more in (([[1000.0, 1000.0], [-1000.0, -1000.0]], 2), (encoded.numeric.tolist(), 0)):
        counted = {name: clipped(client, name) for name in ("ad_price", "ad_quality")}
        body = infer_body(encoded.categorical.tolist(), numeric)
        response = client.post("/v2/models/esmm/infer", json=body)
        assert response.status_code == 200, response.text
        outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
        assert outputs["pctr"] == [row["pctr"] for row in edge] and outputs["pcvr"] == [row["pcvr"] for row in edge]
        assert {name: clipped(client, name) - n for name, n in counted.items()} == dict.fromkeys(counted, more)
