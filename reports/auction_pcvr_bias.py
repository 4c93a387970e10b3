"""Why the auction's debiased ``esmm`` over-estimates the CVR of the impressions it shows (pCVR / true CVR 1.38 x
over a 6-seed run, 1.09 x when the same config trains on the world's ~1M-row logs): each window of a ``ctr auction``
run's debiased pipeline trained again as ``clients/auction/retrain.py`` does (reports/auction_constant_warnings.py's
``window_training``), its mean pCVR over the mean true CVR (``pcvr_over_true``, clients/auction/day.py) measured for
the model at several points and against controls (docs/auction.md, "Why the auction's esmm over-estimates CVR"):

- ``untrained``: the model as ``fit`` starts it, the CVR tower's offset at the training rows' conversions per click;
- ``epochs = k`` (k = 1..6): trained k epochs (2: as configured, the served model);
- ``interaction = false``: 2 epochs without the user-ad interaction term;
- ``start at true CVR``: 2 (and 6) epochs with the CVR tower's offset started at the training rows' mean true CVR
  (the world's truth: an oracle start) instead of conversions per click: tests whether the start is what stays;
- ``start at 2 x per click``: 2 epochs started at twice the per-click rate's odds: how much of a start survives.

Each on: the served day's shown impressions (the run's measure), all of that day's candidates (shown and not: the
auction's selection by the model's own pCVR taken out), and the window's validation tail (shown by the previous
model); and the yardsticks: the training rows' conversions per click over the true CVR (what a constant gives),
the click-weighted true CVR (weights true_ctr x examination) over the plain mean, and the drift of the true CVR
from the training rows to the served day.

    PYTHONPATH=. nice -n 15 python reports/auction_pcvr_bias.py --work-dir /tmp/c0 --run-json /tmp/control_0.json \
        --out /tmp/pcvr_a.json   # and --work-dir /tmp/c3 --run-json /tmp/control_3.json --out /tmp/pcvr_b.json
    PYTHONPATH=. python reports/auction_pcvr_bias.py --records /tmp/pcvr_a.json /tmp/pcvr_b.json \
        --out reports/auction_pcvr_bias.json

(``--work-dir``, ``--run-json``: a ``ctr auction`` run's work dir and its JSON, whose day records' own
``pcvr_over_true`` each window's 2-epoch model is checked against: the check that the run was rebuilt.)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from cli.reports import write_report
from reports.auction_constant_warnings import WindowTraining, served_day, window_training, windows
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, fix_model_constants, predict, validation_cut
from training.logs.arrow_files import read_parquet
from training.logs.reading import read_joined_logs
from training.models.registry import build_model
from training.world import write_logs

EPOCHS = 6  # 3 x the configured 2


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def truth(path: Path, spec) -> dict[str, np.ndarray]:
    """The world's true_ctr, examination and true_cvr of each row of a log, in the order the trainer reads it."""
    table = read_joined_logs(path, spec).table
    return {c: np.asarray(table.column(c), dtype=np.float64) for c in ("true_ctr", "examination", "true_cvr")}


def candidates(built: WindowTraining, window: dict[str, Any], scratch: Path) -> tuple[ImpressionTensors, np.ndarray]:
    """All the served day's candidates (its shown impressions and its non-displayed ones, labels 0 at slot 1 for
    the latter: pCVR reads neither), encoded as the window's model reads them, with their true CVR."""
    shown = read_parquet(window["served_day"])
    hidden = read_parquet(window["served_day"].with_name(window["served_day"].stem + "_non_displayed.parquet"))
    n = hidden.num_rows
    for column in shown.schema.names:
        if column not in hidden.schema.names:
            field = shown.schema.field(column)
            value = 1 if column == "position" else 0
            hidden = hidden.append_column(field, pa.array(np.full(n, value), type=field.type))
    hidden = hidden.select(shown.schema.names)
    path = scratch / "candidates.parquet"
    write_logs(pa.concat_tables([shown, hidden]), path)
    return served_day(path, built.spec, built.data), truth(path, built.spec)["true_cvr"]


def pcvr(model: torch.nn.Module, data: ImpressionTensors) -> np.ndarray:
    return predict(model, data)["pcvr"].astype(np.float64)


def started_at(model: torch.nn.Module, cvr_logit) -> torch.nn.Module:
    """``model`` whose CVR tower ``fit`` starts at ``cvr_logit(tensors)`` instead of conversions per click."""
    fixed = model.fix_constants

    def fix_constants(tensors: dict[str, torch.Tensor]) -> None:
        fixed(tensors)
        model.cvr_tower.start_at(cvr_logit(tensors))

    model.fix_constants = fix_constants
    return model


def study_window(window: dict[str, Any], training_seed: int, scratch: Path) -> dict[str, Any]:
    """One window's ratios for each model state and its yardsticks."""
    built = window_training(window, scratch)
    config, settings = built.config, replace(built.settings, seed=training_seed)
    parts = built.parts
    window_truth = truth(built.joined, built.spec)
    cut = validation_cut(len(built.data), settings.validation_fraction)
    train_cvr, valid_cvr = window_truth["true_cvr"][:cut], window_truth["true_cvr"][cut:]
    day_truth = truth(window["served_day"], built.spec)
    all_data, all_cvr = candidates(built, window, scratch)
    click = parts["train"].tensors["click"].numpy().astype(np.float64)
    per_click = float((click * parts["train"].tensors["conversion"].numpy()).sum() / click.sum())
    true_start = logit(float(train_cvr.mean()))
    odds = per_click / (1 - per_click)

    def measure(model: torch.nn.Module) -> dict[str, float]:
        return {
            "served_day": float(pcvr(model, parts["served_day"]).mean() / day_truth["true_cvr"].mean()),
            "all_candidates": float(pcvr(model, all_data).mean() / all_cvr.mean()),
            "validation": float(pcvr(model, parts["validation"]).mean() / valid_cvr.mean()),
            "training": float(pcvr(model, parts["train"]).mean() / train_cvr.mean()),
        }

    def trained(params: dict, epochs: int, start=None) -> dict[str, float]:
        model = build_model(config.kind, built.spec, params, seed=training_seed)
        if start is not None:
            started_at(model, start)
        fit(model, built.data, replace(settings, epochs=epochs), progress=False)
        return measure(model)

    untrained = build_model(config.kind, built.spec, config.model, seed=training_seed)
    fix_model_constants(untrained, parts["train"].tensors, settings.validation_fraction)
    states = {"untrained": measure(untrained)}
    for epochs in range(1, EPOCHS + 1):
        states[f"epochs = {epochs}"] = trained(config.model, epochs)
    states["interaction = false"] = trained(config.model | {"interaction": False}, 2)
    states["start at true CVR"] = trained(config.model, 2, lambda _: true_start)
    states[f"start at true CVR, epochs = {EPOCHS}"] = trained(config.model, EPOCHS, lambda _: true_start)
    states["start at 2 x per click"] = trained(config.model, 2, lambda _: math.log(2 * odds))
    day = day_truth["true_cvr"]
    weights = day_truth["true_ctr"] * day_truth["examination"]
    return {
        "seed": window["seed"],
        "window": window["window"],
        "served_day": window["served_day"].stem,
        "training_seed": training_seed,
        "training_rows": int(cut),
        "training_clicks": int(click.sum()),
        "training_conversions": int((click * parts["train"].tensors["conversion"].numpy()).sum()),
        "steps_per_epoch": -(-cut // settings.batch_size),
        "per_click_rate": per_click,
        "yardsticks": {
            "per_click_over_true_served_day": per_click / float(day.mean()),
            "per_click_over_true_validation": per_click / float(valid_cvr.mean()),
            "per_click_over_true_training": per_click / float(train_cvr.mean()),
            "click_weighted_over_mean_served_day": float((weights * day).sum() / weights.sum() / day.mean()),
            "click_weighted_over_mean_training": float(
                (window_truth["true_ctr"] * window_truth["examination"] * window_truth["true_cvr"])[:cut].sum()
                / (window_truth["true_ctr"] * window_truth["examination"])[:cut].sum()
                / train_cvr.mean()
            ),
            "served_day_true_over_training_true": float(day.mean() / train_cvr.mean()),
            "shown_true_over_all_candidates_true": float(day.mean() / all_cvr.mean()),
        },
        "states": states,
    }


def run_record(run_json: Path | None, seed: int, day: int) -> float | None:
    """The run's own ``pcvr_over_true`` of the debiased pipeline on ``day`` for run seed ``seed``."""
    if run_json is None:
        return None
    report = json.loads(run_json.read_text(encoding="utf-8"))
    for record in report["pipelines"]["debiased"]["seeds"]:
        if record["seed"] == seed:
            return float(record["days"][day]["pcvr_over_true"])
    return None


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the windows of each state's ratios and of the yardsticks."""
    states = {
        name: {
            where: float(np.mean([r["states"][name][where] for r in records])) for where in records[0]["states"][name]
        }
        for name in records[0]["states"]
    }
    yardsticks = {k: float(np.mean([r["yardsticks"][k] for r in records])) for k in records[0]["yardsticks"]}
    checked = [r for r in records if r.get("run_pcvr_over_true") is not None]
    return {
        "windows": len(records),
        "states": states,
        "yardsticks": yardsticks,
        "run_pcvr_over_true": float(np.mean([r["run_pcvr_over_true"] for r in checked])) if checked else None,
        "largest_rebuild_gap": max(
            (abs(r["states"]["epochs = 2"]["served_day"] - r["run_pcvr_over_true"]) for r in checked), default=None
        ),
    }


def table(summary_: dict[str, Any]) -> str:
    lines = [
        "| model | served day (shown) | all candidates | validation tail | training rows |\n|---|---|---|---|---|\n"
    ]
    for name, ratios in summary_["states"].items():
        lines.append(
            f"| {name} | {ratios['served_day']:.2f} | {ratios['all_candidates']:.2f} | {ratios['validation']:.2f} "
            f"| {ratios['training']:.2f} |\n"
        )
    lines += [f"\n{k}: {v:.3f}\n" for k, v in summary_["yardsticks"].items()]
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, action="append", default=[])
    parser.add_argument("--run-json", type=Path, action="append", default=[], help="each work dir's ctr auction JSON")
    parser.add_argument("--seeds", type=str, default=None, help="comma-separated run seeds (default: all found)")
    parser.add_argument("--training-seed", type=int, default=0)
    parser.add_argument("--train-days", type=int, default=2)
    parser.add_argument("--records", type=Path, nargs="*", help="join these outputs of earlier runs, no training")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_pcvr_bias.json"))
    args = parser.parse_args()
    records, report = studied_or_joined(args, "reports/auction_pcvr_bias.py", study)
    result = summary(records)
    write_report(args.out, report | {"summary": result, "windows": records})
    sys.stdout.write(table(result) + f"\nwrote {args.out}\n")


def studied_or_joined(args: argparse.Namespace, script: str, study) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The window records and the report's head: ``study(args)``'s with ``--work-dir``, or those of the outputs of
    earlier runs joined with ``--records`` (no training)."""
    command = f"PYTHONPATH=. nice -n 15 python {script} " + " ".join(sys.argv[1:])
    if args.records:
        parts = [json.loads(path.read_text(encoding="utf-8")) for path in args.records]
        return [w for part in parts for w in part["windows"]], {
            "command": command,
            "parts": [part["command"] for part in parts],
        }
    if args.work_dir:
        return study(args), {"command": command}
    raise SystemExit("give --work-dir (to train) or --records (to join)")


def window_records(args: argparse.Namespace, record_of, progress) -> list[dict[str, Any]]:
    """``record_of(window, scratch)`` of every debiased window of each ``args.work_dir`` (its ``args.seeds``, where
    given), with the run's own ``pcvr_over_true`` of the day the window's model served (``args.run_json``, each work
    dir's); ``progress(record)``: its line on stderr."""
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    seeds = None if getattr(args, "seeds", None) is None else {int(s) for s in args.seeds.split(",")}
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, work_dir in enumerate(args.work_dir):
            run_json = args.run_json[index] if index < len(args.run_json) else None
            for window in windows(work_dir, args.train_days, ("debiased",)):
                if seeds is not None and window["seed"] not in seeds:
                    continue
                record = record_of(window, Path(scratch))
                served = int(window["served_day"].stem[3:])
                record["run_pcvr_over_true"] = run_record(run_json, window["seed"], served)
                records.append(record)
                sys.stderr.write(progress(record) + "\n")
    return records


def study(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``study_window`` of every debiased window of each ``args.work_dir`` (its ``args.seeds``)."""
    return window_records(
        args,
        lambda window, scratch: study_window(window, args.training_seed, scratch),
        lambda r: (
            f"{r['seed']} {r['window']}: epoch 2 {r['states']['epochs = 2']['served_day']:.3f} "
            f"run {r['run_pcvr_over_true']}"
        ),
    )


if __name__ == "__main__":
    main()
