"""Why the auction's daily retraining warns that ESMM "predicts worse than a constant": the windows a `ctr auction`
run trained on, trained again here with several training seeds, each model's validation log loss set beside the
constant's with what could explain a difference (docs/auction.md, "The retraining's warnings").

The default run (reports/auction.json) warned 20 times (esmm 17: ctcvr log loss 10, logged-slot CTR 7; esmm_blind 3).
For every window of a run's ``--work-dir`` (the history window and each day's, per seed and service pipeline; its
ctcvr model: ``esmm`` for debiased, ``esmm_blind`` for naive) and each training seed, this trains the pipeline's
own config (batch 128) as ``clients/auction/retrain.py`` does (training seed 0 is the run's model, its warnings the
run's) and records:

- the validation tail (the window's latest tenth, training/fitting/fit.py ``split_by_time``): rows, clicks,
  click-and-conversions, and its rates beside the training rows' (the constant predicts the training rate);
- per key (the judged CTR log loss, ``ctcvr_logloss``), the model's and the constant's log loss, their difference
  with a 95% bootstrap interval over the validation rows (paired: both on the same resample), the best constant's
  (the validation rows' own rate), the untrained model's (its weights as built, the towers' offsets fixed at the
  training log-odds, as ``fit`` starts) and the mean prediction over the rate (and the mean pCTR on the training
  rows over theirs);
- for the slot-1 ``esmm`` also ``ctcvr_logloss_logged_b``: its pCTCVR at each row's logged slot (pCTR with the
  bypass at the row's b, times pCVR), where ``ctcvr_logloss`` scores the served top-slot pCTCVR against clicks and
  conversions at every slot (the CTR key was moved to the logged slot for that reason: epoch_validation.py; the
  trainer records this one and judges a slot-1 model's CTCVR by it since this study, which ran on 1777ddc's code);
- the same differences on the next auction day's logs (the day this model served: 5x the rows), b from the window;
- esmm's controls (``VARIANTS``): the interaction term off, and one epoch instead of two;
- with ``--epochs-factor F`` (training seed 0), the differences after each of F x the config's epochs.

Its parts (``--seeds``, each window's records written by ``--windows-out``) join with ``--records``, which
summarises such files without training; the summary goes to ``--out``:

    PYTHONPATH=. python reports/auction_constant_warnings.py --work-dir artifacts/auction --seeds 0 \
        --windows-out /tmp/w0.json --out /tmp/s0.json
    PYTHONPATH=. python reports/auction_constant_warnings.py --records /tmp/w0.json /tmp/w1.json /tmp/w2.json \
        [--out reports/auction_constant_warnings.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from cli.reports import write_report
from clients.auction.pipelines import NAIVE_CTCVR_MODEL
from common.encoder import FeatureEncoder
from training.evaluation.constant_baseline import constant_key
from training.evaluation.metrics import row_log_losses
from training.fitting.dataset import ImpressionTensors
from training.fitting.epoch_validation import BY_EPOCH, judged_by
from training.fitting.fit import PREDICTED_ROWS, fit, fix_model_constants, predict, split_by_time
from training.logs.arrow_files import read_parquet
from training.logs.reading import read_joined_logs
from training.model_config import ModelConfig
from training.models.position_bypass import serves_slot1, slot1_predictions
from training.models.registry import build_model
from training.pipeline import training_data, training_settings
from training.position_ctr import position_ctr
from training.world import write_logs

CTCVR_MODELS = {"naive": NAIVE_CTCVR_MODEL, "debiased": "esmm"}  # the models the default run warned of
BOOTSTRAP = 2000  # resamples of the validation rows


def windows(work_dir: Path, train_days: int, pipelines=tuple(CTCVR_MODELS)) -> list[dict[str, Any]]:
    """Every window the run trained on (of ``pipelines``: one that trains nothing, such as ``random``, gives the
    windows it would have): seed, pipeline, label, its day files and the next day's (served) file."""
    out = []
    for seed_dir in sorted(work_dir.glob("seed*"), key=lambda p: int(p.name[4:])):
        history = sorted(seed_dir.glob("history/day-*.parquet"), key=lambda p: -int(p.stem[4:]))
        for pipeline in pipelines:
            logs = seed_dir / pipeline / "logs"
            days = sorted(logs.glob("day[0-9].parquet"), key=lambda p: int(p.stem[3:]))
            if not days:
                continue
            files = [*history, *days]
            for last in range(len(history) - 1, len(files) - 1):  # every day but the last is retrained after
                label = "history" if last < len(history) else f"day{last - len(history)}"
                window = files[last - train_days + 1 : last + 1]
                out.append(
                    {"seed": int(seed_dir.name[4:]), "pipeline": pipeline, "window": label, "files": window,
                     "served_day": files[last + 1], "directory": seed_dir / pipeline}
                )  # fmt: skip
    return out


def predictions(model: torch.nn.Module, data: ImpressionTensors) -> dict[str, np.ndarray]:
    """pctr at the judged slot (a slot-1 model's: the logged one), the served pctcvr and, for a slot-1 model, its
    pctcvr at the logged slot; float64."""
    if not serves_slot1(model):
        out = predict(model, data)
        return {"pctr_judged": out["pctr"].astype(np.float64), "pctcvr": out["pctcvr"].astype(np.float64)}
    model.eval()
    with torch.no_grad():
        served, logged = zip(
            *(slot1_predictions(model, batch) for batch in data.minibatches(PREDICTED_ROWS)), strict=True
        )
    pcvr = np.concatenate([s["pcvr"] for s in served]).astype(np.float64)
    logged_pctr = np.concatenate(logged)
    return {
        "pctr_judged": logged_pctr,
        "pctcvr": np.concatenate([s["pctcvr"] for s in served]).astype(np.float64),
        "pctcvr_logged_b": logged_pctr * pcvr,
    }


def compare(labels: np.ndarray, predicted: np.ndarray, rate: float, rng: np.random.Generator) -> dict[str, Any]:
    """The model's log loss against the constant ``rate``'s on the same rows, with a paired bootstrap interval."""
    model, constant = row_log_losses(labels, predicted), row_log_losses(labels, np.full(labels.size, rate))
    difference = model - constant
    draws = rng.integers(0, labels.size, size=(BOOTSTRAP, labels.size))
    boot = difference[draws].mean(axis=1)
    best = labels.mean()
    return {
        "model": float(model.mean()),
        "constant": float(constant.mean()),
        "difference": float(difference.mean()),
        "difference_ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "best_constant": float(row_log_losses(labels, np.full(labels.size, best)).mean()),
        "mean_prediction": float(predicted.mean()),
        "rate": float(best),
    }


def comparisons(model: torch.nn.Module, data: ImpressionTensors, rates: dict[str, float], seed: int) -> dict:
    """Each key's ``compare`` on ``data``."""
    click = data.tensors["click"].numpy().astype(np.float64)
    ctcvr = click * data.tensors["conversion"].numpy().astype(np.float64)
    predicted = predictions(model, data)
    rng = np.random.default_rng(seed)
    out = {"ctr_judged": compare(click, predicted["pctr_judged"], rates["ctr"], rng)}
    out["ctcvr_logloss"] = compare(ctcvr, predicted["pctcvr"], rates["ctcvr"], rng)
    if "pctcvr_logged_b" in predicted:
        out["ctcvr_logloss_logged_b"] = compare(ctcvr, predicted["pctcvr_logged_b"], rates["ctcvr"], rng)
    return out


def served_day(path: Path, spec, window: ImpressionTensors) -> ImpressionTensors:
    """The next day's logs encoded as the window's model reads them, b from the window's position CTRs."""
    table = read_joined_logs(path, spec).table
    table_ctr = position_ctr(window.tensors["position"].numpy(), window.tensors["click"].numpy())
    return ImpressionTensors.from_table(table, FeatureEncoder(spec), position_ctr=table_ctr)


# esmm's controls: its user-ad interaction term off (docs/cvr.md chose the term on 1M-row training sets; a window
# has 10,800 training rows), and one epoch instead of its two (esmm_blind trains one, and did not warn of its CTR)
VARIANTS = {"esmm": {"interaction = false": ({"interaction": False}, {}), "epochs = 1": ({}, {"epochs": 1})}}


def trained_run(model: torch.nn.Module, data: ImpressionTensors, settings, parts: dict, rates: dict) -> dict:
    """Fit ``model`` on ``data`` with ``settings`` and compare it with the constant on the validation tail and on
    the served day (``parts``), beside the untrained model's validation log losses."""
    fix_model_constants(model, parts["train"].tensors, settings.validation_fraction)
    untrained = comparisons(model, parts["validation"], rates, settings.seed)
    metrics = fit(model, data, settings, progress=False)
    judged = judged_by(metrics)
    return {
        "seed": settings.seed,
        "judged_by": judged,
        "warned": {  # as training/pipeline.py say_validation tested it at 1777ddc (the served pCTCVR's log loss)
            judged: metrics[judged] >= metrics[constant_key("ctr_logloss")],
            "ctcvr_logloss": metrics["ctcvr_logloss"] >= metrics[constant_key("ctcvr_logloss")],
        },
        "validation": comparisons(model, parts["validation"], rates, settings.seed),
        "untrained": {key: value["model"] for key, value in untrained.items()},
        "served_day": comparisons(model, parts["served_day"], rates, settings.seed),
        # its mean pCTR (at the judged slot) on its own training rows over their click rate: calibrated there?
        "training_mean_prediction_over_rate": float(
            predictions(model, parts["train"])["pctr_judged"].mean() / rates["ctr"]
        ),
    }


@dataclass
class WindowTraining:
    """A window's training as ``clients/auction/retrain.py`` runs it: the ctcvr model's config, the fitted spec,
    the encoded window (``data``), the trainer's settings, its parts (train, validation tail, the served day) and
    the training rows' rates (the constant's)."""

    config: ModelConfig
    spec: Any
    data: ImpressionTensors
    settings: Any
    parts: dict[str, ImpressionTensors]
    rates: dict[str, float]
    joined: Path  # the window's logs, as the trainer read them


def window_training(window: dict[str, Any], scratch: Path, name: str | None = None) -> WindowTraining:
    """``window``'s training of its pipeline's model ``name`` (default: its ctcvr model), its logs joined into
    ``scratch``."""
    repository = window["directory"] / "models"
    joined = scratch / "window.parquet"
    write_logs(pa.concat_tables([read_parquet(f) for f in window["files"]], promote_options="permissive"), joined)
    config = ModelConfig.load(repository, name or CTCVR_MODELS[window["pipeline"]])
    _, spec, data = training_data(config, joined, window["directory"] / "spec.toml", scratch)
    settings = training_settings(config, repository, len(data))
    train, validation = split_by_time(data, settings.validation_fraction)
    parts = {"train": train, "validation": validation, "served_day": served_day(window["served_day"], spec, data)}
    click = train.tensors["click"].numpy().astype(np.float64)
    rates = {"ctr": click.mean(), "ctcvr": (click * train.tensors["conversion"].numpy()).mean()}
    return WindowTraining(config, spec, data, settings, parts, rates, joined)


def study_window(
    window: dict[str, Any], training_seeds: int, epochs_factor: int, scratch: Path
) -> list[dict[str, Any]]:
    """The window's records: its ctcvr model's, then each of its controls in ``VARIANTS``."""
    built = window_training(window, scratch)
    config, spec, data, settings = built.config, built.spec, built.data, built.settings
    name, parts, rates = config.name, built.parts, built.rates
    train, validation = parts["train"], parts["validation"]
    valid_click = validation.tensors["click"].numpy()
    common = {key: window[key] for key in ("seed", "pipeline", "window")} | {
        "steps": settings.epochs * -(-len(train) // settings.batch_size),
        "rows": {"training": len(train), "validation": len(validation), "served_day": len(parts["served_day"])},
        "validation_clicks": int(valid_click.sum()),
        "validation_ctcvr": int((valid_click * validation.tensors["conversion"].numpy()).sum()),
        "training_rates": {k: float(v) for k, v in rates.items()},
    }
    variants = {name: (config.model, settings)} | {
        f"{name}, {label}": (config.model | model, replace(settings, **training))
        for label, (model, training) in VARIANTS.get(name, {}).items()
    }
    records = []
    for label, (params, trained) in variants.items():
        runs = [
            trained_run(
                build_model(config.kind, spec, params, seed=seed), data, replace(trained, seed=seed), parts, rates
            )
            for seed in range(training_seeds)
        ]
        records.append(common | {"model": label, "by_training_seed": runs})
    if epochs_factor > 1:
        longer = replace(settings, epochs=settings.epochs * epochs_factor)
        metrics = fit(build_model(config.kind, spec, config.model, seed=0), data, longer, progress=False)
        constants = {key: metrics[constant_key(c)] for key, c in (("ctr", "ctr_logloss"), ("ctcvr", "ctcvr_logloss"))}
        records[0]["by_epoch"] = [
            {"epoch": r["epoch"], "ctr_judged": r[judged_by(r)] - constants["ctr"],
             "ctcvr_logloss": r["ctcvr_logloss"] - constants["ctcvr"]}
            for r in metrics[BY_EPOCH]
        ]  # fmt: skip
    return records


KEYS = ("ctr_judged", "ctcvr_logloss", "ctcvr_logloss_logged_b")
RATE_OF = {"ctr_judged": "ctr", "ctcvr_logloss": "ctcvr", "ctcvr_logloss_logged_b": "ctcvr"}


def median(values) -> float:
    return float(np.median(list(values)))


def summary_row(model: str, key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's ``key`` over every (window, training seed) of ``records``: how often the model was not below
    the constant on the validation tail and with how many of the training seeds per window, how wide the bootstrap
    interval of the difference is, whether the served day agrees, what the untrained model and the rates say."""
    runs = [(r, t) for r in records for t in r["by_training_seed"] if key in t["validation"]]
    valid = [t["validation"][key] for _, t in runs]
    served = [t["served_day"][key] for _, t in runs]
    worse_by_window: dict[tuple, int] = {}
    for r, t in runs:
        window = (r["seed"], r["pipeline"], r["window"])
        worse_by_window[window] = worse_by_window.get(window, 0) + (t["validation"][key]["difference"] >= 0)
    seeds = max(len(r["by_training_seed"]) for r, _ in runs)
    positives = "validation_clicks" if RATE_OF[key] == "ctr" else "validation_ctcvr"
    return {
        "model": model,
        "key": key,
        "runs": len(runs),
        "windows": len(worse_by_window),
        "validation_rows": median(r["rows"]["validation"] for r in records),
        "validation_positives": [
            int(min(r[positives] for r in records)),
            median(r[positives] for r in records),
            int(max(r[positives] for r in records)),
        ],
        # the trainer's own test of the same runs at 1777ddc (no trainer key then for the logged-slot pCTCVR): equal
        # to not_below
        "warned_by_trainer": None
        if key == "ctcvr_logloss_logged_b"
        else sum(t["warned"][t["judged_by"] if key == "ctr_judged" else key] for _, t in runs),
        "not_below": sum(v["difference"] >= 0 for v in valid),
        "not_below_seed0": sum(t["validation"][key]["difference"] >= 0 for _, t in runs if t["seed"] == 0),
        "windows_by_seeds_not_below": [sum(n == k for n in worse_by_window.values()) for k in range(seeds + 1)],
        "ci_contains_0": sum(v["difference_ci95"][0] < 0 < v["difference_ci95"][1] for v in valid),
        # the runs not below the constant (the warned ones): how many within their interval's noise, and what the
        # served day said of the same model (its interval above 0: worse there too; below 0: better)
        "not_below_ci_contains_0": sum(v["difference_ci95"][0] < 0 for v in valid if v["difference"] >= 0),
        "not_below_served_day_ci_above_0": sum(
            d["difference_ci95"][0] > 0 for v, d in zip(valid, served, strict=True) if v["difference"] >= 0
        ),
        "not_below_served_day_ci_below_0": sum(
            d["difference_ci95"][1] < 0 for v, d in zip(valid, served, strict=True) if v["difference"] >= 0
        ),
        "median_difference": median(v["difference"] for v in valid),
        "median_ci_half_width": median((v["difference_ci95"][1] - v["difference_ci95"][0]) / 2 for v in valid),
        "served_day_not_below": sum(v["difference"] >= 0 for v in served),
        "served_day_ci_below_0": sum(v["difference_ci95"][1] < 0 for v in served),
        "served_day_ci_above_0": sum(v["difference_ci95"][0] > 0 for v in served),
        "served_day_median_difference": median(v["difference"] for v in served),
        "untrained_minus_constant": median(t["untrained"][key] - t["validation"][key]["constant"] for _, t in runs),
        "mean_prediction_over_rate": median(v["mean_prediction"] / v["rate"] for v in valid if v["rate"] > 0),
        "training_mean_pctr_over_rate": median(t["training_mean_prediction_over_rate"] for _, t in runs),
        "validation_over_training_rate": median(
            v["rate"] / r["training_rates"][RATE_OF[key]] for (r, _), v in zip(runs, valid, strict=True)
        ),
        "constant_minus_best": median(v["constant"] - v["best_constant"] for v in valid),
    }


def summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``summary_row`` of every model and key the records hold."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in records):
        mine = [r for r in records if r["model"] == model]
        keys = [k for k in KEYS if any(k in t["validation"] for r in mine for t in r["by_training_seed"])]
        rows += [summary_row(model, key, mine) for key in keys]
    return rows


def by_epoch(records: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per model and key, the mean difference from the constant after each epoch of the longer runs, and how many
    of their windows were not below it."""
    out: dict[str, dict[str, list[float]]] = {}
    for model in dict.fromkeys(r["model"] for r in records):
        epochs = [r["by_epoch"] for r in records if r["model"] == model and "by_epoch" in r]
        if not epochs:
            continue
        for key in ("ctr_judged", "ctcvr_logloss"):
            table = np.array([[e[key] for e in run] for run in epochs])  # (windows, epochs)
            out.setdefault(model, {})[key] = table.mean(axis=0).tolist()
            out[model][f"{key}_not_below"] = (table >= 0).sum(axis=0).tolist()
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The summary as a markdown table (docs/auction.md's)."""
    header = (
        "| model | key | validation positives (min, median, max) | not below the constant: runs (seed 0) "
        "| windows by training seeds not below (0, 1, 2, 3) | its 95% interval holds 0 "
        "| of those not below: interval holds 0, served day's > 0, < 0 | median difference "
        "| median half-width | served day: not below, interval > 0, < 0 | untrained - constant "
        "| mean prediction / rate | (pCTR on training rows) | validation / training rate |\n" + "|---" * 13 + "|\n"
    )
    return header + "".join(
        f"| {r['model']} | {r['key']} | {', '.join(f'{p:g}' for p in r['validation_positives'])} "
        f"| {r['not_below']}/{r['runs']} ({r['not_below_seed0']}/{r['windows']}) "
        f"| {', '.join(map(str, r['windows_by_seeds_not_below']))} | {r['ci_contains_0']}/{r['runs']} "
        f"| {r['not_below_ci_contains_0']}, {r['not_below_served_day_ci_above_0']}, "
        f"{r['not_below_served_day_ci_below_0']} "
        f"| {r['median_difference']:+.4f} | {r['median_ci_half_width']:.4f} "
        f"| {r['served_day_not_below']}, {r['served_day_ci_above_0']}, {r['served_day_ci_below_0']} "
        f"| {r['untrained_minus_constant']:+.5f} | {r['mean_prediction_over_rate']:.2f} "
        f"| {r['training_mean_pctr_over_rate']:.2f} "
        f"| {r['validation_over_training_rate']:.2f} |\n"
        for r in rows
    )


def epoch_table(epochs: dict[str, dict[str, list[float]]]) -> str:
    """The longer runs' mean difference from the constant after each epoch (and how many windows not below)."""
    lines = ["| model | key | after epoch 1, 2, ... : mean difference (windows not below) |\n|---|---|---|\n"]
    for model, keys in epochs.items():
        for key in ("ctr_judged", "ctcvr_logloss"):
            cells = [f"{d:+.4f} ({n})" for d, n in zip(keys[key], keys[f"{key}_not_below"], strict=True)]
            lines.append(f"| {model} | {key} | {', '.join(cells)} |\n")
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("artifacts/auction"))
    parser.add_argument("--seeds", type=str, default=None, help="comma-separated run seeds (default: all found)")
    parser.add_argument("--train-days", type=int, default=2)
    parser.add_argument("--training-seeds", type=int, default=3)
    parser.add_argument("--epochs-factor", type=int, default=3)
    parser.add_argument("--records", type=Path, nargs="*", help="summarise these outputs of earlier runs, joined")
    parser.add_argument("--out", type=Path, default=Path("reports/auction_constant_warnings.json"))
    parser.add_argument("--windows-out", type=Path, default=None, help="each window's records, for --records")
    args = parser.parse_args()
    command = "PYTHONPATH=. python reports/auction_constant_warnings.py " + " ".join(sys.argv[1:])
    if args.records:
        records = [w for path in args.records for w in json.loads(path.read_text(encoding="utf-8"))["windows"]]
    else:
        records = study(args)
    rows = summary(records)
    report = {"command": command, "summary": rows, "by_epoch": by_epoch(records)}
    if args.windows_out is not None:  # each window's records (~600 KB for the default run): what --records reads
        write_report(args.windows_out, {"command": command, "windows": records})
    write_report(args.out, report)
    sys.stdout.write(table(rows) + "\n" + epoch_table(by_epoch(records)) + f"\nwrote {args.out}\n")


def study(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``study_window`` of every window of ``args.work_dir`` (its ``args.seeds``)."""
    logging.basicConfig(level=logging.ERROR)  # the trainer's per-window lines and warnings: counted here instead
    torch.set_num_threads(1)
    found = windows(args.work_dir, args.train_days)
    if args.seeds is not None:
        found = [w for w in found if w["seed"] in {int(s) for s in args.seeds.split(",")}]
    if not found:
        raise SystemExit(f"no auction logs under {args.work_dir} (seed*/naive|debiased/logs/day*.parquet)")
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        for window in found:
            records += study_window(window, args.training_seeds, args.epochs_factor, Path(scratch))
            sys.stderr.write(f"{window['seed']} {window['pipeline']} {window['window']}\n")
    return records


if __name__ == "__main__":
    main()
