"""Is it the training set's size that leaves the auction's ``esmm`` over-estimating CVR (pCVR / true CVR 1.38 x on
its 12,000-row windows) where the same config on the world's ~1M-row logs gets 1.09 x (docs/auction.md, "Why the
auction's esmm over-estimates CVR")?

One world, one held-out day: the committed ``esmm`` config (``models/esmm/config.toml``) trained, as ``ctr train
esmm`` trains it, on the first ``rows`` rows of its own simulated logs (the feedback policy's; the latest tenth of
them held out for validation, as ever) for several sizes, at the auction's batch of 128 and the committed 2,048,
2 epochs, training seeds 0..N-1; each model's mean pCVR over the mean true CVR measured on ``ctr evaluate esmm``'s
held-out uniformly displayed day (the same rows for every model), on its own validation tail and on its training
rows. If the size is what matters, the 12,000-row models sit near the auction's figure and the over-estimate
shrinks with the rows towards the full logs'; if the 12,000-row models already sit near 1.09 x, the size is not it.

    PYTHONPATH=. nice -n 15 python reports/esmm_pcvr_by_rows.py --seeds 3 --out reports/esmm_pcvr_by_rows.json

Each model says its line on stderr; the JSON (records and, per size and batch, means and spreads over the seeds)
is written at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cli.reports import write_report
from common.encoder import FeatureEncoder
from reports.auction_pcvr_bias import truth
from reports.auction_slot_ratios import window_of
from training.evaluation.world_heldout import heldout_day
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, predict, validation_cut
from training.logs.column_arrays import column_array
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.pipeline import training_data

MODEL = "esmm"
ROWS = (12_000, 48_000, 192_000, 0)  # 0: every row of the logs; 12,000: an auction window (2 days x 2,000 x 3)
BATCHES = (128, 2048)  # the auction's (clients/auction/run.py batch_size), the committed config's


def over_true(pcvr: np.ndarray, true_cvr: np.ndarray) -> float:
    """Mean pCVR over mean true CVR (the auction's ``pcvr_over_true``, ``ctr evaluate``'s pCVR ratio)."""
    return float(pcvr.mean() / true_cvr.mean())


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = ModelConfig.load(Path("models"), MODEL)
    with tempfile.TemporaryDirectory() as work_dir:
        logs, spec, data = training_data(config, None, None, Path(work_dir))
        world_cvr = truth(logs, spec)["true_cvr"]
    total = int(data.tensors["click"].shape[0])
    table = heldout_day(config)
    heldout = ImpressionTensors.from_table(table, FeatureEncoder(spec))
    heldout_cvr = column_array(table, "true_cvr")
    records = []
    for rows in [r or total for r in args.rows]:
        window = window_of(data, rows)
        cut = validation_cut(rows, config.training.validation_fraction)
        train, tail = window.take(slice(0, cut)), window.take(slice(cut, rows))
        for batch in args.batches:
            settings = replace(config.training, batch_size=batch, epochs=args.epochs)
            for seed in range(args.seeds):
                model = build_model(config.kind, spec, dict(config.model), seed=seed)
                fit(model, window, replace(settings, seed=seed), progress=False)
                record = {
                    "rows": rows,
                    "training_rows": cut,
                    "batch_size": batch,
                    "epochs": args.epochs,
                    "steps": args.epochs * -(-cut // batch),
                    "training_seed": seed,
                    "clicks": int(train.tensors["click"].sum()),
                    "conversions": int(train.tensors["conversion"].sum()),
                    "heldout": over_true(predict(model, heldout)["pcvr"], heldout_cvr),
                    "validation_tail": over_true(predict(model, tail)["pcvr"], world_cvr[cut:rows]),
                    "training_rows_ratio": over_true(predict(model, train)["pcvr"], world_cvr[:cut]),
                }
                records.append(record)
                sys.stderr.write(
                    f"{rows} rows, batch {batch}, {record['steps']} steps, seed {seed}: pCVR / true held-out "
                    f"{record['heldout']:.3f}, validation tail {record['validation_tail']:.3f}, training rows "
                    f"{record['training_rows_ratio']:.3f}\n"
                )
    return {"model": MODEL, "logs_rows": total, "records": records, "summary": summary(records)}


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per size and batch: mean and sample spread over the seeds of each ratio."""
    out: dict[str, Any] = {}
    for rows, batch in dict.fromkeys((r["rows"], r["batch_size"]) for r in records):
        mine = [r for r in records if (r["rows"], r["batch_size"]) == (rows, batch)]
        part: dict[str, Any] = {k: mine[0][k] for k in ("training_rows", "steps", "clicks", "conversions")}
        for key in ("heldout", "validation_tail", "training_rows_ratio"):
            values = np.array([r[key] for r in mine])
            part[key] = [float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None]
        out[f"{rows} rows, batch {batch}"] = part
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=list(ROWS), help="window sizes (0: all the logs)")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_report(args.out, run(args))


if __name__ == "__main__":
    main()
