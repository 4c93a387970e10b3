"""Does the bypass's log start (``[model] bypass_start = "log"``, training/models/bypass_start.py) mend the flat or
inverted slot ratios that ``ctr new``'s settings learned on a small own log (training/models/position_bypass.py,
``warn_of_ratios_against_the_log``: on a 40k-row log, [1, 1.04, 1.13, 1.20, 1.32] for two seeds of four)?

The audit's 40k-row log is not in the repository; its stand-in is the first ``ROWS`` rows of the world's simulated
logs (the served ``ctr`` config's ``[data]``: feedback policy), whose truth is known: each row's examination
θ_k = (1/k)^eta and true CTR. On it, each model config below is trained as ``ctr train NAME --logs`` trains it,
with either start and training seeds 0..N-1 (the config's ``seed`` and the network's draw):

- ``esmm_debiased``: ``ctr new NAME --kind esmm_debiased``'s config (the kind's defaults; ``[training]`` without
  epochs and batch size, so scaled to the log: 200 steps);
- ``adversarial_ctr``: ``ctr new NAME --kind adversarial_ctr``'s (the paper's settings, SGD, lam = 0.9999; scaled);
- ``ctr (--from ctr)``: the served ``models/ctr`` config as ``ctr new NAME --from ctr`` copies it (one epoch of
  2,048: 18 steps here).

Each record holds the untrained model's ratios (as ``fit`` starts it), the trained ones (model.json's
``position.ctr_ratios``), the slots ``inverted_slots`` finds against the log's own click rates, the validation
metrics, and on the world's held-out uniformly displayed day (``ctr evaluate ctr``'s: training/evaluation/
position_debias.py) the slot-1 pCTR against the true top-slot CTR (``mean_pred_over_true``, ``calibration_error``)
and, per slot k, the served slot-k CTR (slot-1 pCTR x learned ratio) against the truth there (θ_k x true CTR).
``--more-steps E`` adds the esmm_debiased drawn start trained E times as many epochs (the refuting check: is it
the start or the number of steps?).

    PYTHONPATH=. nice -n 15 python reports/bypass_start_small_logs.py --seeds 8 --more-steps 4 \\
        --out reports/bypass_start_small_logs.json

Each finished model says its line on stderr (config, start, steps, seed, untrained and trained ratios, inverted
slots, held-out slot-1 pCTR / truth and ECE); the JSON is written at the end. docs/moore2018.md ("A small own
log") ran it in parts on a loaded 2-core VM, and its commands say which.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cli.reports import write_report
from common.encoder import FeatureEncoder
from reports.auction_pcvr_bias import truth
from reports.auction_slot_ratios import interval, per_slot, window_of
from training.evaluation.position_debias import CLICK_STREAM, scores
from training.evaluation.world_heldout import heldout_day, slot1_clicks
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, fix_model_constants, predict, validation_cut
from training.fitting.settings import TrainingConfig
from training.logs.column_arrays import column_array
from training.model_config import ModelConfig
from training.models.position_bypass import inverted_slots, position_summary
from training.models.registry import build_model
from training.pipeline import scaled_to_data, training_data
from training.position_ctr import listed_slots, position_ctr

ROWS = 40_000  # the audit's log's size
STARTS = ("drawn", "log")


def configs(served: ModelConfig, rows: int) -> dict[str, tuple[str, dict[str, Any], TrainingConfig]]:
    """Label -> (kind, [model] table, [training] settings) of each config studied, as ``ctr train`` reads them."""
    scaled = scaled_to_data(TrainingConfig(), rows)  # `ctr new --kind`'s [training]: epochs and batch from the log
    # the paper's 100 Loss_B-only epochs move the Bias network alone, which no prediction reads: left out, as they
    # took most of the run's time (the main phase and every figure here are the same without them)
    return {
        "esmm_debiased": ("esmm_debiased", {}, scaled),
        "adversarial_ctr": ("adversarial_ctr", {"bias_epochs": 0}, scaled),
        "ctr (--from ctr)": (served.kind, dict(served.model), served.training),
    }


def slot_truth(table: Any, pctr: np.ndarray, ratios: list[float]) -> list[float]:
    """Per slot k of the held-out day: mean(slot-1 pCTR x ratio_k) / mean(examination x true CTR) over its rows."""
    position = column_array(table, "position").astype(np.int64)
    served_truth = column_array(table, "examination") * column_array(table, "true_ctr")
    out = []
    for k, ratio in enumerate(ratios, start=1):
        at = position == k
        out.append(float((pctr[at] * ratio).mean() / served_truth[at].mean()) if at.any() else float("nan"))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    seeds = range(args.seeds) if args.seed_list is None else [int(s) for s in args.seed_list.split(",")]
    served = ModelConfig.load(Path("models"), "ctr")
    with tempfile.TemporaryDirectory() as work_dir:
        logs, spec, data = training_data(served, None, None, Path(work_dir))
        world = truth(logs, spec)
    window = window_of(data, args.rows)
    table = heldout_day(served)
    true_ctr = column_array(table, "true_ctr")
    clicks = slot1_clicks(true_ctr, CLICK_STREAM)
    heldout = ImpressionTensors.from_table(table, FeatureEncoder(spec))
    records = []
    for label, (kind, params, settings) in configs(served, args.rows).items():
        if args.configs and label.split()[0] not in args.configs.split(","):
            continue
        cut = validation_cut(args.rows, settings.validation_fraction)
        train = window.take(slice(0, cut)).tensors
        position = train["position"].numpy()
        logged_ctr = listed_slots(position_ctr(position, train["click"].numpy()))
        logged = [c / logged_ctr[0] for c in logged_ctr]
        theta = per_slot(world["examination"][:cut], position, len(logged))
        quality = per_slot(world["true_ctr"][:cut], position, len(logged))  # the ads' mix: true CTR / slot 1's
        variants = [] if args.more_steps_only else [(start, settings) for start in STARTS]
        if args.more_steps > 1 and label == "esmm_debiased":
            variants.append(("drawn", replace(settings, epochs=settings.epochs * args.more_steps)))
        for start, trained_as in variants:
            for seed in seeds:
                model = build_model(kind, spec, params | {"bypass_start": start}, seed=seed)
                fix_model_constants(model, train, trained_as.validation_fraction)
                untrained = position_summary(model, window.tensors)["ctr_ratios"]
                model = build_model(kind, spec, params | {"bypass_start": start}, seed=seed)
                metrics = fit(model, window, replace(trained_as, seed=seed), progress=False)
                ratios = position_summary(model, window.tensors)["ctr_ratios"]
                pctr = predict(model, heldout)["pctr"]
                record = {
                    "config": label,
                    "start": start,
                    "epochs": trained_as.epochs,
                    "batch_size": trained_as.batch_size,
                    "steps": trained_as.epochs * -(-cut // trained_as.batch_size),
                    "training_seed": seed,
                    "theta": theta,
                    "logged": logged,
                    "logged_ctr": logged_ctr,
                    "quality": quality,
                    "untrained": untrained,
                    "ratios": ratios,
                    "inverted": inverted_slots(ratios, logged),
                    "ratios_over_theta": [r / t for r, t in zip(ratios, theta, strict=True)],
                    "validation": {k: float(metrics[k]) for k in ("ctr_auc", "ctr_logloss_logged_b") if k in metrics},
                    "heldout": scores(pctr, true_ctr, clicks),
                    "heldout_slot_pctr_over_true": slot_truth(table, pctr, ratios),
                }
                records.append(record)
                sys.stderr.write(
                    f"{label} {start} {record['steps']} steps seed {seed}: untrained {np.round(untrained, 2)} "
                    f"trained {np.round(ratios, 3)} inverted {record['inverted']} "
                    f"top {record['heldout']['mean_pred_over_true']:.3f} "
                    f"ece {record['heldout']['calibration_error']:.4f}\n"
                )
    return {"rows": args.rows, "seeds": list(seeds), "records": records, "summary": summary(records)}


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per config, start and steps: seeds with an inverted slot, and mean and spread (sample std) over the seeds."""
    out: dict[str, Any] = {}
    groups = sorted({(r["config"], r["start"], r["steps"]) for r in records}, key=str)
    for config, start, steps in groups:
        mine = [r for r in records if (r["config"], r["start"], r["steps"]) == (config, start, steps)]
        part: dict[str, Any] = {
            "seeds": len(mine),
            "seeds_inverted": sum(bool(r["inverted"]) for r in mine),
            "theta": mine[0]["theta"],
            "logged": mine[0]["logged"],
            "quality": mine[0]["quality"],
        }
        for key in ("untrained", "ratios", "ratios_over_theta", "heldout_slot_pctr_over_true"):
            values = np.array([r[key] for r in mine])
            part[key] = [float(v) for v in values.mean(axis=0)]
            part[f"{key}_spread"] = [float(v) for v in values.std(axis=0, ddof=1)]
        for where in ("validation", "heldout"):
            for key in mine[0][where]:
                values = np.array([r[where][key] for r in mine])
                part[f"{where}_{key}"] = [float(values.mean()), float(values.std(ddof=1))]
        out[f"{config}, {start} start, {steps} steps"] = part
    for config in sorted({r["config"] for r in records}):
        drawn, log = ([r for r in records if r["config"] == config and r["start"] == s] for s in STARTS)
        if not drawn or not log:
            continue
        steps = min(r["steps"] for r in drawn)
        by_seed = {r["training_seed"]: r for r in drawn if r["steps"] == steps}
        pairs = [(by_seed[r["training_seed"]], r) for r in log if r["training_seed"] in by_seed]
        out[f"{config}, log - drawn (paired seeds)"] = {
            f"heldout_{k}": interval([b["heldout"][k] - a["heldout"][k] for a, b in pairs])
            for k in pairs[0][0]["heldout"]
        } | {
            f"validation_{k}": interval([b["validation"][k] - a["validation"][k] for a, b in pairs])
            for k in pairs[0][0]["validation"]
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows of the world's logs trained on (from the first)")
    parser.add_argument("--seeds", type=int, default=8, help="training seeds 0..N-1")
    parser.add_argument("--more-steps", type=int, default=4, help="esmm_debiased drawn start with E x the epochs")
    parser.add_argument("--seed-list", help="comma-separated training seeds, in place of 0..N-1")
    parser.add_argument("--more-steps-only", action="store_true", help="only the esmm_debiased longer drawn start")
    parser.add_argument("--configs", help="comma-separated kinds of the configs to run (ctr: --from ctr's); all")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = run(args)
    write_report(args.out, result)
    sys.stdout.write(json.dumps(result["summary"], indent=1) + "\n")


if __name__ == "__main__":
    main()
