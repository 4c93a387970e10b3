"""What fitting before the split gives the validation tenth: the trainer fits the numeric statistics and the
position CTRs behind b (training/pipeline.py, training/fitting/dataset.py) on every row of the log, the validation tail
included, then holds that tail back from the gradient steps and reports its metrics in model.json. This trains
a model's config twice on the same simulated log, once so and once with both fitted on the training rows only,
and prints the validation metrics and the exported b constants of each side by side.

    PYTHONPATH=. python reports/validation_tail_fitted.py [-r models] [--model esmm] [--days 3]
        [--requests-per-day 8000] [--epochs 1] [--hidden 64 32] [--out reports/validation_tail_fitted.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from common.encoder import FeatureEncoder, fit_statistics
from training.config_world import world_of, world_spec
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, validation_cut
from training.logs.column_arrays import column_array, feature_columns
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.position_ctr import position_ctr

CONSTANTS = ("b_inference", "b_mean", "b_std")


def trained(config: ModelConfig, table, columns, spec, position_rates=None) -> dict:
    """The validation metrics and exported b constants of ``config`` trained on ``table``."""
    data = ImpressionTensors.from_table(table, FeatureEncoder(spec), position_ctr=position_rates, columns=columns)
    model = build_model(config.kind, spec, config.model, seed=config.training.seed)
    metrics = fit(model, data, config.training, progress=False)
    bypass = getattr(model, "bypass", None)
    constants = {name: float(getattr(bypass, name)) for name in CONSTANTS} if bypass is not None else {}
    means = {name: stats.mean for name, stats in spec.stats.items()}
    return {"metrics": metrics, "constants": constants, "numeric_means": means}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--requests-per-day", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--out", type=Path, default=Path("reports/validation_tail_fitted.json"))
    args = parser.parse_args()
    config = ModelConfig.load(args.repository, args.model)
    config = replace(
        config,
        model=config.model | {"hidden": args.hidden},
        training=replace(config.training, epochs=args.epochs),
        data=replace(config.data, days=args.days, requests_per_day=args.requests_per_day),
    )
    data = config.data
    table = world_of(config).simulate(
        days=data.days, requests_per_day=data.requests_per_day, policy=data.policy, seed=data.seed
    )
    spec = world_spec(config)
    columns = feature_columns(table, spec)
    cut = validation_cut(table.num_rows, config.training.validation_fraction)
    head = {name: values[:cut] for name, values in columns.items()}
    position, click = column_array(table, "position")[:cut], column_array(table, "click")[:cut]
    sides = {
        "whole_log": trained(config, table, columns, fit_statistics(spec, columns)),
        "training_rows_only": trained(
            config, table, columns, fit_statistics(spec, head), position_ctr(np.asarray(position), np.asarray(click))
        ),
    }
    report = {
        "command": " ".join(sys.argv),
        "model": args.model,
        "rows": table.num_rows,
        "validation_rows": table.num_rows - cut,
        "settings": {
            "days": args.days,
            "requests_per_day": args.requests_per_day,
            "epochs": args.epochs,
            "hidden": args.hidden,
        },
        **sides,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(side_by_side(sides["whole_log"], sides["training_rows_only"]))
    sys.stdout.write(f"wrote {args.out}\n")


def side_by_side(whole: dict, head_only: dict) -> str:
    """The two sides' numeric metrics and constants, one line each; the metrics that are not one number (the
    per-epoch validation, a difference with its interval) are in the JSON report only."""
    lines = [f"{'':<26}{'whole log':>14}{'training rows':>16}\n"]
    for group in ("metrics", "constants"):
        for name, value in whole[group].items():
            if isinstance(value, int | float):
                lines.append(f"{name:<26}{value:>14.5f}{head_only[group][name]:>16.5f}\n")
    return "".join(lines)


if __name__ == "__main__":
    main()
