"""Why the auction's debiased ``ctr`` model publishes slot ratios far flatter than the world's examination θ_k = 1/k
(docs/auction.md, "Why the auction's published slot ratios are too flat"): each window of a ``ctr auction`` run's
debiased pipeline trained again as ``clients/auction/retrain.py`` trains its ``ctr`` model (reports/
auction_constant_warnings.py's ``window_training``), and the ratios its bypass learned (model.json's
``position.ctr_ratios``, training/models/position_bypass.py ``position_summary``) set beside:

- θ_k, the mean true examination of the window's slot-k training rows (the world's truth);
- the window's logged slot CTR over slot 1's, and its expectation (true CTR x examination), which mixes θ with the
  ads the policy put at each slot; and that mix alone: the slot's mean true CTR over slot 1's (``quality``);
- the run's own published ratios of the window's model (its repository's model.json): the check that it was rebuilt.

The model states (training seed 0, as the run's, unless said): ``untrained`` (as ``fit`` starts it), ``epochs = k``
(1: as configured, the served model; 85 Adam steps at batch 128 an epoch), ``lam = 0`` (the adversary off: its
penalty's weight 0), ``seed s`` (training seeds 1-4, one epoch: the start's draw), and the same with the bypass
started from the log (``bypass_start = "log"``, training/models/bypass_start.py). With ``--random-work-dir`` (a
``--pipelines random,oracle`` run of the same seeds) also the windows of the ``random`` pipeline's logs, whose
slots hold the eligible ads in a uniformly random order: position independent of the ad, so the logged ratio
estimates θ itself (its ``day0`` window joins the last feedback-policy history day to a random day).

``--world`` instead trains the ``ctr`` config as ``ctr train ctr`` does, on the world's simulated logs (its
``[data]``), with either start and training seeds 0..N-1 (``--world-seeds``; 0 is the served model's): the ratios,
the validation metrics, and the scores of ``ctr evaluate ctr`` on its held-out uniformly displayed day
(training/evaluation/position_debias.py).

    PYTHONPATH=. nice -n 15 python reports/auction_slot_ratios.py --work-dir RUN --random-work-dir RND --out /tmp/w.json
    PYTHONPATH=. nice -n 15 python reports/auction_slot_ratios.py --world --out /tmp/world.json
    PYTHONPATH=. python reports/auction_slot_ratios.py --records /tmp/w.json /tmp/world.json \
        --runs RUN.json RUN_LOG.json --out reports/auction_slot_ratios.json

(``--runs``: ``ctr auction`` reports whose debiased pipeline's published ratios and slot calibration are set side by
side: the run above and the same run with ``bypass_start = "log"`` in a copy of the configs, ``--configs``.)
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
import torch

from cli.reports import write_report
from clients.auction.report import ci95
from common.encoder import FeatureEncoder
from reports.auction_constant_warnings import window_training, windows
from reports.auction_pcvr_bias import truth
from training.evaluation.position_debias import CLICK_STREAM, scores
from training.evaluation.world_heldout import heldout_day, slot1_clicks
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, fix_model_constants, predict, validation_cut
from training.logs.column_arrays import column_array
from training.model_config import ModelConfig
from training.models.position_bypass import position_summary
from training.models.registry import build_model
from training.pipeline import training_data
from training.position_ctr import listed_slots, position_ctr, position_ctr_per_row

CTR_MODEL = "ctr"
STARTS = ("drawn", "log")  # AdversarialCTRConfig.bypass_start: the old start (the control) and the log's
EPOCHS = (1, 2, 4, 8)
TRAINING_SEEDS = (1, 2, 3, 4)  # beside seed 0, one epoch each
WORLD_WINDOW = 12_000  # rows of the world's logs trained as an auction window


def per_slot(values: np.ndarray, position: np.ndarray, slots: int) -> list[float]:
    """Mean of ``values`` at each slot 1..slots over slot 1's."""
    means = [float(values[position == k].mean()) for k in range(1, slots + 1)]
    return [m / means[0] for m in means]


def yardsticks(built, rows: int) -> dict[str, list[float]]:
    """θ, the logged ratios, their expectation and the ads' quality per slot over the window's training rows."""
    tensors = built.parts["train"].tensors
    position = tensors["position"].numpy()
    logged = listed_slots(position_ctr(position, tensors["click"].numpy()))
    window_truth = {k: v[:rows] for k, v in truth(built.joined, built.spec).items()}
    slots = len(logged)
    return {
        "theta": per_slot(window_truth["examination"], position, slots),
        "logged": [c / logged[0] for c in logged],
        "expected_logged": per_slot(window_truth["true_ctr"] * window_truth["examination"], position, slots),
        "quality": per_slot(window_truth["true_ctr"], position, slots),
        "impressions": [int((position == k).sum()) for k in range(1, slots + 1)],
    }


def trained(built, params: dict[str, Any], epochs: int, seed: int = 0) -> dict[str, Any]:
    """The ratios (and, trained, the validation metrics) of the window's model with ``params``, ``epochs`` (0: as
    ``fit`` starts it) and training seed ``seed``."""
    tensors = built.parts["train"].tensors
    model = build_model(built.config.kind, built.spec, built.config.model | params, seed=seed)
    metrics: dict[str, Any] = {}
    if epochs == 0:
        fix_model_constants(model, tensors, built.settings.validation_fraction)
    else:
        metrics = fit(model, built.data, replace(built.settings, epochs=epochs, seed=seed), progress=False)
    record = {"ratios": position_summary(model, built.data.tensors)["ctr_ratios"]}  # on every row, as ctr train
    for key in ("ctr_auc", "ctr_logloss_logged_b", "ctr_logloss"):
        if key in metrics:
            record[key] = float(metrics[key])
    return record


def states(built) -> dict[str, dict[str, Any]]:
    """Every model state of the study, by label."""
    out = {}
    for start in STARTS:
        prefix = "" if start == "drawn" else "log start, "
        params = {"bypass_start": start}
        out[f"{prefix}untrained"] = trained(built, params, 0)
        for epochs in EPOCHS:
            out[f"{prefix}epochs = {epochs}"] = trained(built, params, epochs)
        for epochs in (1, 4):
            out[f"{prefix}lam = 0, epochs = {epochs}"] = trained(built, params | {"lam": 0.0}, epochs)
        for seed in TRAINING_SEEDS:
            out[f"{prefix}untrained, seed {seed}"] = trained(built, params, 0, seed)
            out[f"{prefix}epochs = 1, seed {seed}"] = trained(built, params, 1, seed)
    return out


WINDOW_LABELS = ["history"] + [f"day{d}" for d in range(64)]  # a window's place (``windows``): its model's version - 1


def published(window: dict[str, Any], model: str = CTR_MODEL) -> list[float] | None:
    """The run's own ratios of the window's ``model`` (version = the window's place + 1), when it trained one."""
    path = window["directory"] / "models" / model / str(WINDOW_LABELS.index(window["window"]) + 1) / "model.json"
    if window["pipeline"] != "debiased" or not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["position"]["ctr_ratios"]


def study_windows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The records of every debiased window of ``args.work_dir`` (and random window of ``args.random_work_dir``)."""
    found = [w for w in windows(args.work_dir, args.train_days) if w["pipeline"] == "debiased"]
    if args.random_work_dir is not None:  # the random pipeline trains nothing: the debiased one's config and spec
        for window in windows(args.random_work_dir, args.train_days, ("random",)):
            if window["window"] != "history":  # the history window is the debiased pipeline's own
                found.append(window | {"directory": args.work_dir / f"seed{window['seed']}" / "debiased"})
    if args.seeds is not None:
        found = [w for w in found if w["seed"] in {int(s) for s in args.seeds.split(",")}]
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        for window in found:
            built = window_training(window, Path(scratch), CTR_MODEL)
            rows = len(built.parts["train"])
            record = {key: window[key] for key in ("seed", "pipeline", "window")} | {
                "training_rows": rows,
                "steps_per_epoch": -(-rows // built.settings.batch_size),
                "yardsticks": yardsticks(built, rows),
                "published": published(window),
                "states": states(built),
            }
            records.append(record)
            served = record["states"]["epochs = 1"]["ratios"]
            sys.stderr.write(
                f"{window['seed']} {window['pipeline']} {window['window']}: "
                f"θ {np.round(record['yardsticks']['theta'], 3)}"
                f" served {np.round(served, 3)} published {record['published']} log start "
                f"{np.round(record['states']['log start, epochs = 1']['ratios'], 3)}\n"
            )
    return records


def window_of(data: ImpressionTensors, rows: int) -> ImpressionTensors:
    """The first ``rows`` of ``data`` with b summarised over them alone, as a window's trainer reads its own log."""
    tensors = data.take(slice(0, rows)).tensors
    b = position_ctr_per_row(tensors["position"].numpy(), tensors["click"].numpy())
    return ImpressionTensors(tensors | {"b": torch.from_numpy(b)})


def study_world(seeds: range) -> list[dict[str, Any]]:
    """The ``ctr`` config trained on the world's logs with each start and training seed: ratios, validation
    metrics, and ``ctr evaluate ctr``'s scores on its held-out uniform day (clicks drawn at position 1); and trained
    as an auction window is (batch 128, one epoch) on the logs' first ``WORLD_WINDOW`` rows alone."""
    config = ModelConfig.load(Path("models"), CTR_MODEL)
    with tempfile.TemporaryDirectory() as work_dir:
        logs, spec, data = training_data(config, None, None, Path(work_dir))
        examination = truth(logs, spec)["examination"]
    table = heldout_day(config)
    true_ctr = column_array(table, "true_ctr")
    clicks = slot1_clicks(true_ctr, CLICK_STREAM)
    heldout = ImpressionTensors.from_table(table, FeatureEncoder(spec))
    records = []
    for rows, settings in ((len(data), config.training), (WORLD_WINDOW, replace(config.training, batch_size=128))):
        window = data if rows == len(data) else window_of(data, rows)
        cut = validation_cut(rows, settings.validation_fraction)
        tensors = window.take(slice(0, cut)).tensors
        logged = listed_slots(position_ctr(tensors["position"].numpy(), tensors["click"].numpy()))
        theta = per_slot(examination[:cut], tensors["position"].numpy(), len(logged))
        for start in STARTS:
            for seed in seeds:
                model = build_model(config.kind, spec, config.model | {"bypass_start": start}, seed=seed)
                metrics = fit(model, window, replace(settings, seed=seed), progress=False)
                record = {
                    "start": start,
                    "training_seed": seed,
                    "rows": rows,
                    "training_rows": cut,
                    "steps": -(-cut // settings.batch_size),
                    "theta": theta,
                    "logged": [c / logged[0] for c in logged],
                    "ratios": position_summary(model, window.tensors)["ctr_ratios"],
                    "validation": {k: float(metrics[k]) for k in ("ctr_auc", "ctr_logloss_logged_b") if k in metrics},
                    "heldout": scores(predict(model, heldout)["pctr"], true_ctr, clicks),
                }
                records.append(record)
                sys.stderr.write(f"world {start} seed {seed}: {json.dumps(record)}\n")
    return records


def mean_ratios(records: list[dict[str, Any]], get) -> list[float]:
    return [float(v) for v in np.mean([get(r) for r in records], axis=0)]


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pipeline, the means over its windows of each state's ratios and validation metrics, and of the
    yardsticks; the largest gap between a rebuilt served model's ratios and the run's."""
    out: dict[str, Any] = {}
    for pipeline in sorted({r["pipeline"] for r in records}):
        mine = [r for r in records if r["pipeline"] == pipeline]
        checked = [r for r in mine if r["published"] is not None]
        out[pipeline] = {
            "windows": len(mine),
            "yardsticks": {k: mean_ratios(mine, lambda r, k=k: r["yardsticks"][k]) for k in mine[0]["yardsticks"]},
            "states": {
                name: {"ratios": mean_ratios(mine, lambda r, n=name: r["states"][n]["ratios"])}
                | {
                    key: float(np.mean([r["states"][name][key] for r in mine]))
                    for key in ("ctr_auc", "ctr_logloss_logged_b")
                    if key in mine[0]["states"][name]
                }
                for name in mine[0]["states"]
            },
            "largest_rebuild_gap": max(
                (
                    float(np.max(np.abs(np.subtract(r["states"]["epochs = 1"]["ratios"], r["published"]))))
                    for r in checked
                ),
                default=None,
            ),
        }
    return out


def world_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per training size and start, the means over the training seeds."""
    out = {}
    for rows in sorted({r["rows"] for r in records}, reverse=True):
        for start in STARTS:
            mine = [r for r in records if r["start"] == start and r["rows"] == rows]
            if mine:
                out[f"{rows} rows, {start} start"] = {
                    "training_seeds": [r["training_seed"] for r in mine],
                    "steps": mine[0]["steps"],
                    "theta": mine[0]["theta"],
                    "logged": mine[0]["logged"],
                    "ratios": mean_ratios(mine, lambda r: r["ratios"]),
                    "ratios_spread": [float(v) for v in np.std([r["ratios"] for r in mine], axis=0, ddof=1)],
                } | {
                    f"{where}_{k}": float(np.mean([r[where][k] for r in mine]))
                    for where in ("validation", "heldout")
                    for k in mine[0][where]
                }
        out[f"{rows} rows, log - drawn"] = paired(
            *([r for r in records if r["start"] == start and r["rows"] == rows] for start in STARTS)
        )
    return out


def paired(drawn: list[dict[str, Any]], log: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per metric and slot ratio, the mean of the log start's minus the drawn start's over the training seeds (the
    same seed paired), with the half-width of its 95% Student t interval: [mean, half-width]."""
    by_seed = {r["training_seed"]: r for r in drawn}
    pairs = [(by_seed[r["training_seed"]], r) for r in log if r["training_seed"] in by_seed]
    out = {}
    for where in ("validation", "heldout"):
        for key in pairs[0][0][where]:
            out[f"{where}_{key}"] = interval([b[where][key] - a[where][key] for a, b in pairs])
    for slot in range(1, len(pairs[0][0]["ratios"])):
        out[f"ratio_slot_{slot + 1}"] = interval([b["ratios"][slot] - a["ratios"][slot] for a, b in pairs])
    return out


def interval(differences: list[float]) -> list[float]:
    """[mean, half-width of its 95% Student t interval] (``ci95``; NaN from one value)."""
    bounds = ci95(differences)
    return [float(np.mean(differences)), (bounds[1] - bounds[0]) / 2 if bounds else float("nan")]


def auction_run(path: Path) -> dict[str, Any]:
    """A ``ctr auction`` report's debiased pipeline, in the figures its slot ratios move: the published ratios (mean
    over the seeds' days), the slot-k calibration and top-slot pCTR / truth (its totals), welfare per seed, revenue."""
    report = json.loads(path.read_text(encoding="utf-8"))
    pipeline = report["pipelines"]["debiased"]
    days = [day for seed in pipeline["seeds"] for day in seed["days"]]
    total = pipeline["total"]
    return {
        "command": report["command"],
        "published_ratios": mean_ratios(days, lambda day: day["slot_ratios"]),
        "slot_pctr_over_true_by_slot": total["slot_pctr_over_true_by_slot"],
        "pctr_over_true_by_slot": total["pctr_over_true_by_slot"],
        "welfare_by_seed": [sum(day["welfare"] for day in seed["days"]) for seed in pipeline["seeds"]],
        "revenue": total["revenue"],
    }


def table(result: dict[str, Any]) -> str:
    lines = []
    for pipeline, part in result.get("windows", {}).items():
        lines.append(f"\n{pipeline} ({part['windows']} windows; rebuild gap {part['largest_rebuild_gap']})\n")
        for name, values in part["yardsticks"].items():
            lines.append(f"  {name}: {np.round(values, 3).tolist()}\n")
        for name, state in part["states"].items():
            metrics = {k: round(v, 4) for k, v in state.items() if k != "ratios"}
            lines.append(f"  {name}: {np.round(state['ratios'], 3).tolist()} {metrics}\n")
    for label, part in result.get("world", {}).items():
        lines.append(f"\nworld, {label}: {json.dumps(part)}\n")
    for label, part in result.get("auction_runs", {}).items():
        lines.append(f"\nauction run, {label}: {json.dumps(part)}\n")
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, help="a ctr auction run's --work-dir with the debiased pipeline")
    parser.add_argument("--random-work-dir", type=Path, help="a run's --work-dir with the random pipeline")
    parser.add_argument("--seeds", type=str, default=None, help="comma-separated run seeds (default: all found)")
    parser.add_argument("--train-days", type=int, default=2)
    parser.add_argument("--world", action="store_true", help="train on the world's logs instead")
    parser.add_argument("--world-seeds", type=int, default=10, help="--world: training seeds 0..N-1 of each start")
    parser.add_argument("--records", type=Path, nargs="*", help="join these outputs of earlier runs, no training")
    parser.add_argument(
        "--runs", type=Path, nargs="*", default=[], help="with --records: ctr auction reports to summarise beside them"
    )
    parser.add_argument("--out", type=Path, default=Path("reports/auction_slot_ratios.json"))
    args = parser.parse_args()
    command = "PYTHONPATH=. nice -n 15 python reports/auction_slot_ratios.py " + " ".join(sys.argv[1:])
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(1)
    if args.records:
        parts = [json.loads(path.read_text(encoding="utf-8")) for path in args.records]
        window_records = [w for part in parts for w in part.get("windows", [])]
        world_records = [w for part in parts for w in part.get("world", [])]
        report: dict[str, Any] = {"command": command, "parts": [part["command"] for part in parts]}
    elif args.world:
        window_records, world_records, report = [], study_world(range(args.world_seeds)), {"command": command}
    elif args.work_dir:
        window_records, world_records, report = study_windows(args), [], {"command": command}
    else:
        raise SystemExit("give --work-dir or --world (to train), or --records (to join)")
    result = {}
    if window_records:
        result["windows"] = summary(window_records)
    if world_records:
        result["world"] = world_summary(world_records)
    if args.runs:
        result["auction_runs"] = {path.stem: auction_run(path) for path in args.runs}
    write_report(args.out, report | {"summary": result, "windows": window_records, "world": world_records})
    sys.stdout.write(table(result) + f"\nwrote {args.out}\n")


if __name__ == "__main__":
    main()
