"""Above how many buckets `embedding_optimizer = "sparse_adam"` makes a training step faster than dense Adam, on a
Criteo-like log (docs/scale.md, "A large embedding table").

Dense Adam moves every row of the shared embedding table and its two moments on every step, so its step should
grow with the spec's buckets; SparseAdam on CPU sorts and coalesces the rows a minibatch looked up, a cost of the
batch and the features, not of the table. The log's inferred spec is scaled (every categorical feature's buckets
times one factor, the numeric features as fitted) to each ``--bucket-totals``, and each kind's step with its
defaults (batch 1,024) is timed both ways. Every (total, way) takes its turn within each round, the order reversed
every other round, so that a load that moves within a minute falls on all of them alike. The load average is
recorded at the start and the end: the step times of dense Adam moved 7x with it in earlier runs.

    PYTHONPATH=. python reports/criteo_like_log.py --out /tmp/criteo.parquet
    PYTHONPATH=. python reports/embedding_step_time.py --logs /tmp/criteo.parquet --spec reports/criteo_like_spec.toml \
        --out reports/embedding_step_time_1.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from common.encoder import FeatureEncoder, fit_statistics
from common.features import FeatureSpec
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import model_phases
from training.fitting.settings import TrainingConfig
from training.logs.column_arrays import feature_columns
from training.logs.reading import read_logs
from training.models.registry import build_model

WAYS = {"dense_adam": TrainingConfig(), "sparse_adam": TrainingConfig(embedding_optimizer="sparse_adam")}


def training_step(kind: str, spec: FeatureSpec, data: ImpressionTensors, config: TrainingConfig):
    """(the kind's main training step, its minibatches), after 5 warm steps."""
    model = build_model(kind, spec, {}, seed=0)
    if hasattr(model, "fix_constants"):
        model.fix_constants(data.tensors)
    step = model_phases(model, config)[0].step
    batches = data.minibatches(config.batch_size, torch.Generator().manual_seed(0))
    for _ in range(5):
        step(next(batches))
    return step, batches


def interleaved_ms(steps: dict, rounds: int, per_round: int) -> dict[str, list[float]]:
    """Each way's mean milliseconds per step in each of ``rounds``, the ways taking turns within each round (a
    shared machine's load moves within a minute: run one after the other, their order decided the winner)."""
    times: dict[str, list[float]] = {way: [] for way in steps}
    for turn in range(rounds):
        order = list(steps.items()) if turn % 2 == 0 else list(reversed(steps.items()))
        for way, (step, batches) in order:
            started = time.perf_counter()
            for _ in range(per_round):
                step(next(batches))
            times[way].append((time.perf_counter() - started) / per_round * 1e3)
    return times


def scaled_spec(spec: FeatureSpec, total: int) -> FeatureSpec:
    """``spec`` with every categorical feature's buckets times ``total / spec.total_buckets`` (at least 2)."""
    factor = total / spec.total_buckets
    scaled = [
        replace(f, buckets=max(2, round(f.buckets * factor))) if f.kind == "categorical" else f for f in spec.features
    ]
    return replace(spec, features=tuple(scaled))


def markdown_table(kind: str, results: list[dict]) -> str:
    lines = [
        f"{kind}: ms per step (median of rounds), dense / sparse, rounds in which sparse_adam was faster",
        "| buckets | dense_adam | sparse_adam | dense / sparse | sparse faster in |",
        "|--:|--:|--:|--:|--:|",
    ]
    for row in results:
        lines.append(
            f"| {row['total_buckets']:,} | {row['dense_adam_ms']} | {row['sparse_adam_ms']} | "
            f"{row['dense_over_sparse']} | {row['rounds_sparse_faster']}/{row['rounds']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--kinds", default="esmm_debiased,cvr_base", help="comma-separated model kinds")
    parser.add_argument("--bucket-totals", default="10000,50000,200000,700000,2000000", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of 5 steps of each (total, way)")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    load_at_start = os.getloadavg()
    spec = FeatureSpec.from_toml(arguments.spec)
    table = read_logs(arguments.logs, spec)
    columns = feature_columns(table, spec)
    spec = fit_statistics(spec, columns)
    totals = [int(total) for total in arguments.bucket_totals.split(",")]
    specs = {total: scaled_spec(spec, total) for total in totals}
    data = {n: ImpressionTensors.from_table(table, FeatureEncoder(s), columns=columns) for n, s in specs.items()}
    report: dict = {"rows": table.num_rows, "torch_threads": torch.get_num_threads(), "kinds": {}}
    for kind in arguments.kinds.split(","):
        steps = {
            (total, way): training_step(kind, specs[total], data[total], config)
            for total in totals
            for way, config in WAYS.items()
        }
        times = interleaved_ms(steps, arguments.rounds, per_round=5)
        results = []
        for total in totals:
            dense, sparse = times[(total, "dense_adam")], times[(total, "sparse_adam")]
            results.append(
                {
                    "total_buckets": specs[total].total_buckets,
                    "dense_adam_ms": round(statistics.median(dense), 1),
                    "sparse_adam_ms": round(statistics.median(sparse), 1),
                    "dense_over_sparse": round(statistics.median(dense) / statistics.median(sparse), 2),
                    "rounds_sparse_faster": sum(s < d for d, s in zip(dense, sparse, strict=True)),
                    "rounds": arguments.rounds,
                    "dense_adam_ms_per_round": [round(t, 1) for t in dense],
                    "sparse_adam_ms_per_round": [round(t, 1) for t in sparse],
                }
            )
        report["kinds"][kind] = results
        sys.stdout.write(markdown_table(kind, results))
    report["load_average_1_5_15_min"] = {"start": load_at_start, "end": os.getloadavg()}
    arguments.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"load average (1, 5, 15 min) at start {load_at_start}, at end {os.getloadavg()}\n")


if __name__ == "__main__":
    main()
