"""Whether the normal interval that training gives the "predicts worse than a constant" difference holds on a small
validation set: on the auction's retraining windows, against the paired bootstrap and against the world's truth.

The trainer records each judged validation log loss minus the constant's (``*_minus_constant``,
training/evaluation/constant_baseline.py ``difference_from_constant``): the mean of the rows' paired differences
d_i with the normal interval of a mean, value +- 1.96 sd(d) / sqrt(n). With few positives the d_i are skewed (a few
large ones, the positives'), where a normal interval can be off. For each window of each ``--work-dir`` (a `ctr
auction` run's, as reports/auction_constant_warnings.py reads them), each training seed, the window's ctcvr model
(``esmm`` for debiased, ``esmm_blind`` for naive; ``esmm`` also with 1 epoch) is trained as the retraining trains it
(``fit``), and for its judged CTR and CTCVR log loss on the validation tail (1,200 rows) this records:

- the trainer's record (value, normal interval), checked against the rows' own differences;
- the paired percentile bootstrap interval (2,000 resamples of the rows), reports/auction_constant_warnings.py's;
- the truth given the rows: the logs carry each row's click probability at its slot (true_ctr x examination,
  x true_cvr for the click-and-conversion), hence each row's expected difference; their mean D is what the
  difference estimates once the labels' noise is gone. The labels drawn again from those probabilities (the rows
  and the model kept), 2,000 times: how often the normal interval misses D below (the whole interval above D: a
  warning "beyond the noise" where there is less) and above; the bootstrap's the same on 200 draws (500
  resamples each).

    PYTHONPATH=. python reports/constant_difference_interval.py --work-dir artifacts/auction \\
        --cases-out /tmp/cases.json --out /tmp/summary.json
    PYTHONPATH=. python reports/constant_difference_interval.py --records /tmp/cases.json \\
        [--out reports/constant_difference_interval.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from cli.reports import write_report
from reports.auction_constant_warnings import CTCVR_MODELS, predictions, windows
from training.evaluation.constant_baseline import Z95, difference_from_constant, difference_key
from training.evaluation.metrics import row_log_losses
from training.fitting.epoch_validation import AGAINST_CONSTANT, judged_by
from training.fitting.fit import fit, split_by_time
from training.logs.arrow_files import read_parquet
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.pipeline import training_data, training_settings
from training.world import write_logs

BOOTSTRAP = 2000  # resamples of the validation rows (reports/auction_constant_warnings.py's)
DRAWS = 2000  # the labels drawn again from the truth, for the normal interval's misses
BOOTSTRAP_DRAWS, BOOTSTRAP_DRAW_RESAMPLES = 200, 500  # the same for the bootstrap's (costlier)
TRAINING_SEEDS = 3


def percentile_interval(d: np.ndarray, rng: np.random.Generator, resamples: int) -> tuple[float, float]:
    """The paired percentile bootstrap 95% interval of the mean of ``d``."""
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def compare(labels: np.ndarray, p: np.ndarray, rate: float, truth: np.ndarray, record: dict, seed: int) -> dict:
    """The normal interval (the trainer's ``record``) beside the bootstrap's and the truth ``truth`` (each row's
    probability of the label), and how often each misses the truth with the labels drawn again."""
    rng = np.random.default_rng(seed)
    mine = difference_from_constant(labels, p, rate)
    if abs(mine["value"] - record["value"]) > 1e-9 or not np.allclose(mine["ci95"], record["ci95"]):
        raise AssertionError(f"the trainer's record {record} is not the rows' {mine}")
    # each row's d were its label 1, were it 0
    clicked, unclicked = (row_log_losses(np.full(p.size, y), p) - row_log_losses([y], [rate]) for y in (1.0, 0.0))
    d = np.where(labels > 0, clicked, unclicked)
    target = float(np.mean(truth * clicked + (1 - truth) * unclicked))  # D: the mean expected difference
    drawn = np.where(rng.random((DRAWS, p.size)) < truth, clicked, unclicked)
    mean, half = drawn.mean(axis=1), Z95 * drawn.std(axis=1, ddof=1) / np.sqrt(p.size)
    bootstrap_misses = np.zeros(2)
    for row in drawn[:BOOTSTRAP_DRAWS]:
        low, high = percentile_interval(row, rng, BOOTSTRAP_DRAW_RESAMPLES)
        bootstrap_misses += (low > target, high < target)
    return {
        "positives": mine["positives"],
        "rows": mine["rows"],
        "value": mine["value"],
        "normal": mine["ci95"],
        "bootstrap": list(percentile_interval(d, rng, BOOTSTRAP)),
        "truth": target,
        "normal_misses": [float(np.mean(mean - half > target)), float(np.mean(mean + half < target))],
        "bootstrap_misses": (bootstrap_misses / BOOTSTRAP_DRAWS).tolist(),
    }


def study_window(window: dict[str, Any], scratch: Path) -> list[dict[str, Any]]:
    """Each training seed's and variant's ``compare`` of the window's ctcvr model, CTR and CTCVR."""
    name = CTCVR_MODELS[window["pipeline"]]
    repository = window["directory"] / "models"
    joined = scratch / "window.parquet"
    table = pa.concat_tables([read_parquet(f) for f in window["files"]], promote_options="permissive")
    write_logs(table, joined)
    config = ModelConfig.load(repository, name)
    _, spec, data = training_data(config, joined, window["directory"] / "spec.toml", scratch)
    settings = training_settings(config, repository, len(data))
    train, validation = split_by_time(data, settings.validation_fraction)
    tail = table.slice(len(train))  # the validation rows, in the log's order as the trainer reads it
    if not np.array_equal(np.asarray(tail.column("click")), validation.tensors["click"].numpy()):
        raise AssertionError("the log's tail is not the trainer's validation rows")
    at_slot = np.asarray(tail.column("true_ctr")) * np.asarray(tail.column("examination"))
    click = validation.tensors["click"].numpy().astype(np.float64)
    labels = {"ctr": click, "ctcvr": click * validation.tensors["conversion"].numpy()}
    truths = {"ctr": at_slot, "ctcvr": at_slot * np.asarray(tail.column("true_cvr"))}
    variants = {name: settings} | ({f"{name}, 1 epoch": replace(settings, epochs=1)} if name == "esmm" else {})
    records = []
    for label, trained in variants.items():
        for seed in range(TRAINING_SEEDS):
            model = build_model(config.kind, spec, config.model, seed=seed)
            metrics = fit(model, data, replace(trained, seed=seed), progress=False)
            predicted = predictions(model, validation)
            for of, keys in AGAINST_CONSTANT.items():
                key = judged_by(metrics, keys)
                output = (
                    "pctcvr_logged_b" if key == "ctcvr_logloss_logged_b" else {"ctr": "pctr_judged"}.get(of, "pctcvr")
                )
                rate = metrics[f"training_{of}"]
                found = compare(labels[of], predicted[output], rate, truths[of], metrics[difference_key(key)], seed)
                where = {name: window[name] for name in ("seed", "pipeline", "window")}
                records.append(where | {"model": label, "training_seed": seed, "key": key} | found)
    return records


def summary_row(model: str, key: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's ``key`` over its cases: the positives, the normal interval's width and lower end against the
    bootstrap's, how often the two disagree on whether the interval holds 0 (the warning's verdict), and each
    interval's misses of the truth."""
    width = [(c["normal"][1] - c["normal"][0]) / (c["bootstrap"][1] - c["bootstrap"][0]) for c in cases]
    shift = [2 * (c["normal"][0] - c["bootstrap"][0]) / (c["bootstrap"][1] - c["bootstrap"][0]) for c in cases]
    warned = [c for c in cases if c["value"] >= 0]
    return {
        "model": model,
        "key": key,
        "cases": len(cases),
        "positives": [
            min(c["positives"] for c in cases),
            float(np.median([c["positives"] for c in cases])),
            max(c["positives"] for c in cases),
        ],
        "width_over_bootstrap": [min(width), float(np.median(width)), max(width)],
        "low_shift_over_half_width": [min(shift), float(np.median(shift)), max(shift)],
        "warned": len(warned),
        "verdict_differs": sum((c["normal"][0] <= 0) != (c["bootstrap"][0] <= 0) for c in cases),
        "verdict_differs_warned": sum((c["normal"][0] <= 0) != (c["bootstrap"][0] <= 0) for c in warned),
        "normal_misses": np.mean([c["normal_misses"] for c in cases], axis=0).tolist(),
        "bootstrap_misses": np.mean([c["bootstrap_misses"] for c in cases], axis=0).tolist(),
    }


def summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["model"], record["key"]), []).append(record)
    return [summary_row(model, key, cases) for (model, key), cases in groups.items()] + [
        summary_row("all", "all", records)
    ]


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| model | key | cases | positives (min, median, max) | normal / bootstrap width (min, median, max) "
        "| normal - bootstrap lower end, in half-widths | holds 0 in one, not the other: cases (of the warned) "
        "| misses of the truth, below / above: normal | bootstrap |\n" + "|---" * 9 + "|\n"
    )
    return header + "".join(
        f"| {r['model']} | {r['key']} | {r['cases']} | {', '.join(f'{p:g}' for p in r['positives'])} "
        f"| {', '.join(f'{w:.2f}' for w in r['width_over_bootstrap'])} "
        f"| {', '.join(f'{s:+.2f}' for s in r['low_shift_over_half_width'])} "
        f"| {r['verdict_differs']} ({r['verdict_differs_warned']} of {r['warned']}) "
        f"| {r['normal_misses'][0]:.1%} / {r['normal_misses'][1]:.1%} "
        f"| {r['bootstrap_misses'][0]:.1%} / {r['bootstrap_misses'][1]:.1%} |\n"
        for r in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, nargs="+", default=[Path("artifacts/auction")])
    parser.add_argument("--train-days", type=int, default=2)
    parser.add_argument("--records", type=Path, nargs="*", help="summarise the cases of earlier runs' --cases-out")
    parser.add_argument("--out", type=Path, default=Path("reports/constant_difference_interval.json"))
    parser.add_argument("--cases-out", type=Path, default=None, help="each case's record, for --records")
    args = parser.parse_args()
    command = "PYTHONPATH=. python reports/constant_difference_interval.py " + " ".join(sys.argv[1:])
    if args.records:
        records = [case for path in args.records for case in json.loads(path.read_text(encoding="utf-8"))["cases"]]
    else:
        records = study(args.work_dir, args.train_days)
    rows = summary(records)
    if args.cases_out is not None:
        write_report(args.cases_out, {"command": command, "cases": records})
    write_report(args.out, {"command": command, "summary": rows})
    sys.stdout.write(table(rows) + f"\nwrote {args.out}\n")


def study(work_dirs: list[Path], train_days: int) -> list[dict[str, Any]]:
    """``study_window`` of every window of ``work_dirs``."""
    logging.basicConfig(level=logging.ERROR)  # the trainer's lines and warnings
    torch.set_num_threads(1)
    found = [window for work_dir in work_dirs for window in windows(work_dir, train_days)]
    if not found:
        raise SystemExit(f"no auction logs under {work_dirs} (seed*/naive|debiased/logs/day*.parquet)")
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        for window in found:
            records += study_window(window, Path(scratch))
            sys.stderr.write(f"{window['seed']} {window['pipeline']} {window['window']}\n")
    return records


if __name__ == "__main__":
    main()
