"""Triton's statistics extension (``GET /v2/models[/{name}[/versions/{v}]]/stats``, gRPC
``ModelStatistics``) from the counters the batchers keep (service/metrics.py), per served model version.

Every request of a model version counts, whichever route sent it (``/v1/score``, V2 REST, gRPC), since
they share its batcher. What each figure is here:

- ``inference_count``: items (rows) run; ``execution_count``: model runs (batches);
- ``success``: requests answered with outputs, ``ns`` their time from enqueue to outputs (queue +
  compute); ``fail``: requests refused or failed at the batcher (queue full, overloaded, deadline,
  cancelled, error), ``ns`` **0: failures are counted, not timed**;
- ``queue`` is counted per **request**, as Triton's: count = ``success.count``, ``ns`` the sum of each
  answered request's wait from enqueue until the run of its first rows began (batched or not), so
  ns / count is the mean wait of a request (``ctr_inference_queue_duration_seconds_total`` in /metrics);
- ``compute_infer`` is counted per **batch** (count = executions): ``ns`` sums each batch's run (collating
  and encoding the inputs and ONNX Runtime, as the batcher times it, so ns / count is the mean per batch);
- ``compute_input`` / ``compute_output``: **not measured apart** (included in ``compute_infer``): 0;
- ``batch_stats``: runs and compute time per exact batch size.

The durations are the batcher's, on the event loop's clock: under uvloop (``ctr serve``) it steps in
whole milliseconds, so a run shorter than that may add 0 ns; sums over many requests even out.
"""

from __future__ import annotations

from typing import Any

from service.metrics import Metrics, ModelStats

NOT_TIMED = {"count": 0, "ns": 0}


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


def model_statistics(name: str, version: int, stats: ModelStats) -> dict[str, Any]:
    """One model version's entry of ``model_stats``."""
    return {
        "name": name,
        "version": str(version),
        "last_inference": stats.last_inference_ms,
        "inference_count": stats.items,
        "execution_count": stats.executions,
        "inference_stats": {
            "success": {"count": stats.successes, "ns": _ns(stats.durations.total)},
            "fail": {"count": sum(stats.failures.values()), "ns": 0},
            "queue": {"count": stats.successes, "ns": _ns(stats.queue_s)},
            "compute_input": dict(NOT_TIMED),
            "compute_infer": {"count": stats.executions, "ns": _ns(stats.compute_s)},
            "compute_output": dict(NOT_TIMED),
            "cache_hit": dict(NOT_TIMED),
            "cache_miss": dict(NOT_TIMED),
        },
        "batch_stats": [
            {
                "batch_size": size,
                "compute_input": dict(NOT_TIMED),
                "compute_infer": {"count": int(runs), "ns": _ns(compute_s)},
                "compute_output": dict(NOT_TIMED),
            }
            for size, (runs, compute_s) in sorted(stats.by_batch_size.items())
        ],
    }


def statistics(metrics: Metrics, versions: list[tuple[str, int]]) -> dict[str, Any]:
    """The ``{"model_stats": [...]}`` body for these (model, version) pairs."""
    # read, not made: a request holding an older snapshot would bring back the series of a version forgotten
    return {"model_stats": [model_statistics(n, v, metrics.models.get((n, v)) or ModelStats()) for n, v in versions]}
