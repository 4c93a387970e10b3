"""Where a `ctr new` model's training time goes on a Criteo-like log, and whether the embedding table's dense Adam
update is it (docs/scale.md, "A large embedding table").

Times reading the log, fitting the statistics and encoding, then the median step of the kind's defaults (batch
1,024) four ways: dense Adam as configured; Adam with the table frozen (no gradient, no update); the same model
over a spec whose buckets are 100x fewer; and `embedding_optimizer = "sparse_adam"`. If the table's dense update
were not the cost, the frozen and shrunk steps would take about as long as dense Adam's.

    PYTHONPATH=. python reports/criteo_like_log.py --out /tmp/criteo.parquet
    PYTHONPATH=. ctr spec infer --logs /tmp/criteo.parquet --out /tmp/criteo_spec.toml
    PYTHONPATH=. python reports/embedding_step_time.py --logs /tmp/criteo.parquet --spec /tmp/criteo_spec.toml \
        --out reports/embedding_step_time.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from common.encoder import FeatureEncoder, fit_statistics
from common.features import FeatureSpec
from training.dataset import ImpressionTensors
from training.fit import TrainingConfig, model_phases
from training.logs import feature_columns, read_logs
from training.models.registry import build_model


def training_step(kind: str, spec: FeatureSpec, data: ImpressionTensors, config: TrainingConfig, frozen: bool):
    """(the kind's main training step, its minibatches), after 5 warm steps."""
    model = build_model(kind, spec, {}, seed=0)
    if hasattr(model, "fix_constants"):
        model.fix_constants(data.tensors)
    if frozen:
        for module in model.modules():
            if isinstance(module, torch.nn.Embedding):
                module.weight.requires_grad_(False)
    step = model_phases(model, config)[0].step
    batches = data.minibatches(config.batch_size, torch.Generator().manual_seed(0))
    for _ in range(5):
        step(next(batches))
    return step, batches


def interleaved_ms(steps: dict, rounds: int, per_round: int) -> dict[str, float]:
    """Median over ``rounds`` of each way's mean milliseconds per step, the ways taking turns within each round
    (a shared machine's load moves within a minute: run one after the other, their order decided the winner)."""
    times: dict[str, list[float]] = {way: [] for way in steps}
    for _ in range(rounds):
        for way, (step, batches) in steps.items():
            started = time.perf_counter()
            for _ in range(per_round):
                step(next(batches))
            times[way].append((time.perf_counter() - started) / per_round * 1e3)
    return {way: round(statistics.median(values), 1) for way, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--kind", default="esmm_debiased")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of 5 steps of each way")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    spec = FeatureSpec.from_toml(arguments.spec)
    started = time.perf_counter()
    table = read_logs(arguments.logs, spec)
    read_s = time.perf_counter() - started
    columns = feature_columns(table, spec)
    spec = fit_statistics(spec, columns)
    data = ImpressionTensors.from_table(table, FeatureEncoder(spec), columns=columns)
    encode_s = time.perf_counter() - read_s - started
    shrunk = replace(
        spec,
        features=tuple(
            replace(f, buckets=max(2, f.buckets // 100)) if f.kind == "categorical" else f for f in spec.features
        ),
    )
    small_data = ImpressionTensors.from_table(table, FeatureEncoder(shrunk), columns=columns)
    dense, sparse = TrainingConfig(), TrainingConfig(embedding_optimizer="sparse_adam")
    ms = interleaved_ms(
        {
            "dense_adam": training_step(arguments.kind, spec, data, dense, frozen=False),
            "table_frozen": training_step(arguments.kind, spec, data, dense, frozen=True),
            "buckets_100x_fewer": training_step(arguments.kind, shrunk, small_data, dense, frozen=False),
            "sparse_adam": training_step(arguments.kind, spec, data, sparse, frozen=False),
        },
        arguments.rounds,
        per_round=5,
    )
    report = {
        "rows": table.num_rows,
        "total_buckets": spec.total_buckets,
        "total_buckets_shrunk": shrunk.total_buckets,
        "torch_threads": torch.get_num_threads(),
        "read_seconds": round(read_s, 2),
        "statistics_and_encoding_seconds": round(encode_s, 2),
        "ms_per_step_median": ms,
    }
    arguments.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
