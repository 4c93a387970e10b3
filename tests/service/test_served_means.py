"""Each version's served probabilities summed in /metrics (``ctr_inference_output_sum_total``): over its
inference count, the mean pCTR / pCVR / pCTCVR it served. A version that verifies but scores differently
from the one before it (trained on a broken join, its model.json edited: an on-call audit served pcvr 1.0
from a hand-edited std, with no figure in /metrics moving) shows in the mean, version by version."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.metrics import SMALL_SUM, summed
from service.settings import Settings
from tests.support.metrics import series
from tests.support.score_bodies import SEVEN_CANDIDATES
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually


def test_each_version_s_served_probabilities_are_summed_beside_its_inference_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.models")
    publish_tiny_esmm(tmp_path, seed=0)
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False, admin_token="t" * 16)
    with TestClient(create_app(settings)) as client:
        before = series(client.get("/metrics").text, "ctr_inference_output_sum_total", 1)
        assert before == {"pctr": 0.0, "pcvr": 0.0, "pctcvr": 0.0}  # from 0: rate() sees the first run
        served, texts = [], {}
        for version in (1, 2):
            for _ in range(3):
                answer = client.post("/v1/score", json=SEVEN_CANDIDATES)
                assert answer.status_code == 200 and answer.json()["models"]["ctr"]["version"] == version
                served.append((version, answer.json()["scores"]))
            texts[version] = client.get("/metrics").text
            if version == 1:  # a second version, other weights: its own series
                publish_tiny_esmm(tmp_path, seed=5)
                headers = {"authorization": "Bearer " + "t" * 16}
                assert client.post("/v2/repository/models/esmm/load", headers=headers).status_code == 200
        # the first version's series go once it is no longer served (models/manager.py ``_retired``)
        eventually(lambda: 'version="1"' not in client.get("/metrics").text, 10, "version 1's series gone")
    assert "model esmm version 1 retired: its queue drained, its series dropped" in caplog.text  # and said
    assert re.search(
        r"model esmm version 2 loaded \(kind esmm, provider CPUExecutionProvider, model.onnx sha256 "
        r"[0-9a-f]{12}\.\.\., [0-9.]+ s\)",
        caplog.text,
    ), caplog.text
    means = {}
    for version in (1, 2):
        sums = series(texts[version], "ctr_inference_output_sum_total", version)
        items = series(texts[version], "ctr_inference_count_total", version)[""]
        assert set(sums) == {"pctr", "pcvr", "pctcvr"} and items == 21
        scores = [score for v, answer in served if v == version for score in answer]
        assert sums["pctr"] == pytest.approx(sum(s["pctr"] for s in scores), rel=1e-6)
        assert sums["pctcvr"] == pytest.approx(sum(s["pctcvr"] for s in scores), rel=1e-6)
        means[version] = sums["pctr"] / items
    assert means[1] != pytest.approx(means[2], rel=1e-3)  # the versions' means tell them apart


def test_a_batch_s_sum_is_the_float64_sum_of_its_values_small_or_large() -> None:
    rng = np.random.default_rng(0)
    for size in (1, SMALL_SUM, SMALL_SUM + 1, 4096):
        values = rng.random(size).astype(np.float32)
        assert summed(values) == pytest.approx(float(values.astype(np.float64).sum()), rel=1e-12, abs=0), size
        assert summed(values.reshape(-1, 1)) == pytest.approx(summed(values), rel=1e-12, abs=0)  # (batch, 1) alike


def test_a_version_served_again_counts_from_0_whatever_this_process_still_held_of_it(tmp_path: Path) -> None:
    """A rollback while another worker's batcher of the version still drained: that worker carried on from its
    old count (300) while this one started from 0, a partial reset that Prometheus counted again as new.
    Here the counts this process still holds of version 1 stand for that worker's: served again, the
    version counts from 0."""
    publish_tiny_esmm(tmp_path, seed=0)
    publish_tiny_esmm(tmp_path, seed=5)
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False, admin_token="t" * 16)
    headers = {"authorization": "Bearer " + "t" * 16}
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/score", json=SEVEN_CANDIDATES).json()["models"]["ctr"]["version"] == 2
        client.app.state.metrics.model("esmm", 1).successes = 300  # still held (a batcher draining elsewhere)
        rollback = 'kind = "esmm"\n[serving]\nversion_policy = { specific = [1] }\n'
        (tmp_path / "esmm" / "config.toml").write_text(rollback)
        assert client.post("/v2/repository/models/esmm/load", headers=headers).status_code == 200
        assert client.post("/v1/score", json=SEVEN_CANDIDATES).json()["models"]["ctr"]["version"] == 1
        assert 'ctr_inference_request_success_total{model="esmm",version="1"} 1\n' in client.get("/metrics").text
