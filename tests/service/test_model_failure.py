"""A model run that fails, as the service answers and reports it: each request of the batch gets a 500
naming the model, the failure is logged once with its traceback (not again per request, nor by uvicorn),
and every 500 is counted in ``ctr_http_responses_total``, on the V2 routes too (Starlette's catch-all
answered those outside the counter). The run is made to fail by replacing the batcher's ``run``: ONNX
Runtime fails on no input the service's checks let through."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def spoiling(run: Callable[[Any], dict], value: float) -> Callable[[Any], dict]:
    """``run`` with its first ``pctr`` replaced by ``value``, as a graph that overflowed would give it."""

    def spoilt(inputs: Any) -> dict:
        outputs = run(inputs)
        outputs["pctr"][0] = value
        return outputs

    return spoilt


@pytest.mark.parametrize(("batching", "value"), [(True, math.nan), (True, math.inf), (False, -math.inf)])
def test_a_non_finite_score_is_a_500_naming_the_model_logged_once_a_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, batching: bool, value: float
) -> None:
    """orjson writes NaN and infinity as null, which a Go ad server decodes as 0 without a word: each request
    of the run is answered 500 instead, and the version's summed outputs in /metrics stay numbers (only
    warm-up checked the outputs; a NaN made the sum NaN for good)."""
    with app_client(make_repository(tmp_path, 1), batching=batching) as client:
        (batcher,) = client.app.state.models.batchers.values()
        batcher.run = spoiling(batcher.run, value)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            scored = client.post("/v1/score", json=SCORE)
            inferred = client.post("/v2/models/esmm/infer", json=infer_body([[0, 50, 74]], [[0.0, 0.0]]))
        for response in (scored, inferred):
            assert response.status_code == 500, response.text
            assert response.json()["error"] == (
                "internal server error: model esmm:1 returned a non-finite score (pctr NaN or infinite) for the "
                "batch holding this request"
            )
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        alone = "run of {} items alone on esmm:1 failed" if not batching else "batch of {} items on esmm:1 failed"
        assert errors == [alone.format(2), alone.format(1)]
        metrics = client.get("/metrics").text
        assert 'ctr_inference_output_sum_total{model="esmm",version="1",output="pctr"} 0.0' in metrics
        assert 'ctr_inference_request_failure_total{model="esmm",version="1",reason="error"} 2' in metrics
