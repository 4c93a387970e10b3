"""How many held-out values the training range would clip: the check that clipping moves no figure.

The encoder clips a numeric value to its feature's training range (common/encoder.py). A figure made on
a held-out day moves only if some of that day's values lie outside the range fitted on the training
logs. For the served ``esmm`` (its ``config.toml``: training logs and the held-out day of ``ctr
evaluate`` and ``ctr evaluate serving``) and for the cvr experiment's seeds 0 and 1, this simulates both,
fits the statistics on the training logs as the trainer does, encodes the held-out day and prints the
values it clipped, by feature, with the ranges.

    PYTHONPATH=. python reports/heldout_outside_range.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.encoder import FeatureEncoder, fit_statistics
from training.evaluation.world_heldout import heldout_day
from training.experiments.cvr import simulate
from training.experiments.settings.cvr import CVRExperimentConfig
from training.logs.column_arrays import feature_columns
from training.model_config import ModelConfig
from training.pipeline import world_of
from training.world import World, WorldConfig, feature_spec


def clipped_on(logs, heldout, spec) -> dict[str, int]:
    fitted = fit_statistics(spec, feature_columns(logs, spec))
    encoder = FeatureEncoder(fitted)
    encoder.encode(feature_columns(heldout, spec), heldout.num_rows)
    return {name: encoder.clipped[name] for name in fitted.stats}


def main() -> None:
    config = ModelConfig.load(Path("models"), "esmm")
    world, data = world_of(config), config.data
    logs = world.simulate(days=data.days, requests_per_day=data.requests_per_day, policy=data.policy, seed=data.seed)
    heldout = heldout_day(config)
    said = clipped_on(logs, heldout, feature_spec(world.config))
    sys.stdout.write(f"esmm: {logs.num_rows} training rows, {heldout.num_rows} held out, clipped {said}\n")
    experiment = CVRExperimentConfig()
    for seed in (0, 1):
        world = World(WorldConfig(**{"seed": 0, **experiment.world}))
        logs, heldout = simulate(world, experiment, seed)
        said = clipped_on(logs, heldout, feature_spec(world.config))
        sys.stdout.write(
            f"cvr seed {seed}: {logs.num_rows} training rows, {heldout.num_rows} held out, clipped {said}\n"
        )


if __name__ == "__main__":
    main()
