"""A model run that fails, as the service answers and reports it: each request of the batch gets a 500
naming the model, the failure is logged once with its traceback (not again per request, nor by uvicorn),
and every 500 is counted in ``ctr_http_responses_total``, on the V2 routes too (Starlette's catch-all
answered those outside the counter). The run is made to fail by replacing the batcher's ``run``: ONNX
Runtime fails on no input the service's checks let through."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.batching.batcher import Batcher
from service.batching.policy import BatchConfig
from service.http.errors import NonFiniteOutput
from service.models.loader import load_newest
from service.settings import Settings
from tests.support.app_client import app_client, make_repository
from tests.support.score_bodies import TWO_CANDIDATES
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.v2_bodies import infer_body


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
            scored = client.post("/v1/score", json=TWO_CANDIDATES)
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
            scored = client.post("/v1/score", json=TWO_CANDIDATES)
            inferred = client.post("/v2/models/esmm/infer", json=infer_body([[0, 50, 74]], [[0.0, 0.0]]))
        for response in (scored, inferred):
            assert response.status_code == 500, response.text
            assert response.json()["error"] == (
                "internal server error: model esmm:1 returned a non-finite score (pctr NaN or infinite) for a row "
                "of this request"
            )
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        alone = "run of {} items alone on esmm:1 failed" if not batching else "batch of {} items on esmm:1 failed"
        assert errors == [alone.format(2), alone.format(1)]
        metrics = client.get("/metrics").text
        assert 'ctr_inference_output_sum_total{model="esmm",version="1",output="pctr"} 0.0' in metrics
        assert 'ctr_inference_request_failure_total{model="esmm",version="1",reason="error"} 2' in metrics


NAN_ROW = 81  # the tiny model's embedding row of ad_id bucket 7 (its ad_id rows start at 74, after user_id and hour)


def nan_embedding_row(weights: dict[str, np.ndarray]) -> None:
    weights["table"][NAN_ROW] = np.nan  # as a training run that diverged on one ad leaves its row


def ad_rows(rows: list[int]) -> dict[str, np.ndarray]:
    """V2 input tensors of one request: a candidate per embedding row of ``rows``, the other features fixed."""
    return {
        "categorical": np.array([[0, 50, row] for row in rows], np.int64),
        "numeric": np.zeros((len(rows), 2), np.float32),
    }


@pytest.mark.parametrize("path", ["event loop", "model thread", "unbatched"])
def test_only_the_requests_whose_own_rows_are_non_finite_are_answered_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """A real ONNX model with one NaN embedding row: a request holding a candidate on that row gets the 500, the
    requests batched with it their scores (one such candidate answered 500 to every request of its batch: 106
    of 150 clean requests in the audit's run). Counted and summed as the requests answered; logged once a run."""
    publish_tiny_esmm(tmp_path, edit=nan_embedding_row)
    model = load_newest(Settings(model_repository=tmp_path, use_cuda=False, ctr_model="esmm"), "esmm", {"pctr"})
    requests = [[82], [NAN_ROW], [83, 84, 85], [86, NAN_ROW]]
    inline = 16 if path == "event loop" else 0
    config = BatchConfig(enabled=path != "unbatched", max_batch_size=16, max_queue_delay_us=0, inline_max_items=inline)

    async def main() -> tuple[Batcher, list[Any]]:
        batcher = Batcher(model.run, config, label="esmm:1", collate=model.collate)
        batcher.start()
        deadline = asyncio.get_running_loop().time() + 5
        works = [batcher.enqueue(ad_rows(rows), len(rows), deadline) for rows in requests]  # one batch, queued at once
        outcomes = await asyncio.gather(*(work.future for work in works), return_exceptions=True)
        await batcher.retire()
        return batcher, outcomes

    with caplog.at_level(logging.ERROR, logger="service.batching.batcher"):
        batcher, outcomes = asyncio.run(main())
    for rows, outcome in zip(requests, outcomes, strict=True):
        if NAN_ROW in rows:
            assert isinstance(outcome, NonFiniteOutput) and outcome.status == 500, outcome
            assert "model esmm:1 returned a non-finite score (pctr NaN or infinite) for a row" in outcome.message
        else:
            alone = model.run(ad_rows(rows))
            for name in ("pctr", "pcvr", "pctcvr"):
                np.testing.assert_allclose(outcome[name], alone[name], rtol=1e-6)
    stats = batcher.stats
    assert (stats.successes, stats.failures["error"], stats.items) == (2, 2, 4)
    assert all(math.isfinite(total) for total in stats.output_sums.values()) and stats.output_sums
    logged = [r.getMessage() for r in caplog.records if r.name == "service.batching.batcher"]
    assert logged == (
        ["run of 1 items alone on esmm:1 failed", "run of 2 items alone on esmm:1 failed"]
        if path == "unbatched"
        else ["batch of 7 items on esmm:1 failed"]
    )
