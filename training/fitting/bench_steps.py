"""How a model's training step splits into a per-step cost and a per-row cost (docs/scale.md).

Data parallelism divides the rows of a step between processes, not the step itself: each process still
runs the whole optimiser update and, under DDP, all-reduces every gradient. A model whose step costs
about the same at half the batch gains nothing from a second process. This times one process's steps
at the configured batch and at fractions of it, on rows sampled from the world, and prints a table:

    ctr bench steps ctr --out reports/bench_steps.json
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from common.encoder import FeatureEncoder, fit_statistics
from training.config_world import world_of, world_spec
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import model_phases
from training.logs.column_arrays import feature_columns
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.torch_threads import using_torch_threads


def time_steps(name: str, root: Path, fractions: tuple[int, ...] = (1, 2, 4), steps: int = 200) -> list[dict]:
    """Mean seconds per step of ``name``'s main phase at ``batch_size / f`` rows, for each f, on one thread
    (what torchrun gives each of several processes on one machine)."""
    with using_torch_threads(1):
        config = ModelConfig.load(root, name)
        table = world_of(config).simulate(days=1, requests_per_day=20_000, policy="feedback", seed=config.data.seed)
        spec = world_spec(config)
        spec = fit_statistics(spec, feature_columns(table, spec))
        data = ImpressionTensors.from_table(table, FeatureEncoder(spec))
        model = build_model(config.kind, spec, config.model, seed=config.training.seed)
        if hasattr(model, "fix_constants"):
            model.fix_constants(data.tensors)
        step = model_phases(model, config.training)[0].step
        generator = torch.Generator().manual_seed(0)
        rows = []
        for fraction in fractions:
            batch = config.training.batch_size // fraction
            batches = [next(data.minibatches(batch, generator)) for _ in range(steps + 20)]
            for warm in batches[:20]:
                step(warm)
            started = time.perf_counter()
            for minibatch in batches[20:]:
                step(minibatch)
            seconds = (time.perf_counter() - started) / steps
            per_second = round(batch / seconds)
            rows.append({"batch": batch, "ms_per_step": round(seconds * 1e3, 3), "rows_per_second": per_second})
    return rows
