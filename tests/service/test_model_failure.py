"""A model run that fails, as the service answers and reports it: each request of the batch gets a 500
naming the model, the failure is logged once with its traceback (not again per request, nor by uvicorn),
and every 500 is counted in ``ctr_http_responses_total``, on the V2 routes too (Starlette's catch-all
answered those outside the counter). The run is made to fail by replacing the batcher's ``run``: ONNX
Runtime fails on no input the service's checks let through."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.service.routes.test_v2_route import infer_body
from tests.service.test_model_manager import app_client, make_repository

SCORE = {"context": {"user_id": "u"}, "candidates": [{"ad_id": "a", "ad_price": 1.0}, {"ad_id": "b", "ad_price": 2.0}]}


def failing_run(inputs: object) -> object:
    raise RuntimeError("the execution provider failed")


def test_a_failed_run_is_a_500_naming_the_model_logged_once_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with app_client(make_repository(tmp_path, 1)) as client:
        (batcher,) = client.app.state.models.batchers.values()
        batcher.run = failing_run
        caplog.clear()
        with caplog.at_level(logging.INFO):
            scored = client.post("/v1/score", json=SCORE)
            inferred = client.post("/v2/models/esmm/infer", json=infer_body([[0, 50, 74]], [[0.0, 0.0]]))
        for response in (scored, inferred):
            assert response.status_code == 500
            assert "model esmm:1 failed to run the batch" in response.json()["error"]
        tracebacks = [r for r in caplog.records if r.exc_info]
        once_a_batch = ["batch of 2 items on esmm:1 failed", "batch of 1 items on esmm:1 failed"]
        assert [r.getMessage() for r in tracebacks] == once_a_batch
        assert 'ctr_http_responses_total{code="500"} 2' in client.get("/metrics").text
