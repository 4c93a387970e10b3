"""Which clicked impressions the IPS / DR propensity floor touches, in the CVR experiment's training logs
(docs/cvr.md "The propensity floor"): per seed, the share of clicked rows whose true propensity
P(click | x, position) = true CTR x examination lies below each floor, the mean true CVR of the clicked
rows below 0.01 and of those above, and the self-normalised IPS estimate of the mean true CVR over every
impression, sum(o * cvr / max(p, floor)) / sum(o / max(p, floor)), with each floor and none: what a CVR
tower that cannot tell those rows apart converges to, against the true mean. The logs are the experiment's
own (``simulate`` with its default sizes: the small world, 3 days of 20,000 requests).

    PYTHONPATH=. python reports/propensity_floor_rows.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from training.experiments.cvr import simulate
from training.experiments.settings.cvr import CVRExperimentConfig
from training.logs.column_arrays import column_array
from training.world import World, WorldConfig

FLOORS = (0.01, 0.001, 0.0001, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    config = CVRExperimentConfig()
    world = World(WorldConfig(**{"seed": 0, **config.world}))
    header = ["seed", "clicked rows"] + [f"% below {f}" for f in FLOORS[:-1]] + ["CVR below 0.01", "CVR above"]
    header += ["true mean CVR"] + [f"SNIPS floor {f} (/ true)" if f else "SNIPS no floor (/ true)" for f in FLOORS]
    sys.stdout.write(" | ".join(header) + "\n")
    for seed in range(args.seeds):
        logs, _ = simulate(world, config, seed)
        click = column_array(logs, "click").astype(bool)
        propensity = (column_array(logs, "true_ctr") * column_array(logs, "examination"))[click]
        cvr_all = column_array(logs, "true_cvr")
        cvr = cvr_all[click]
        low = propensity < 0.01
        row = [str(seed), str(int(click.sum()))]
        row += [f"{100 * np.mean(propensity < floor):.2f}" for floor in FLOORS[:-1]]
        row += [f"{cvr[low].mean():.4f}", f"{cvr[~low].mean():.4f}", f"{cvr_all.mean():.4f}"]
        for floor in FLOORS:
            weight = 1.0 / np.maximum(propensity, floor)
            estimate = np.sum(weight * cvr) / np.sum(weight)
            row.append(f"{estimate:.4f} ({estimate / cvr_all.mean():.3f})")
        sys.stdout.write(" | ".join(row) + "\n")


if __name__ == "__main__":
    main()
