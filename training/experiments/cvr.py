"""Entire-space CVR: ESMM against its baselines and its IPS / doubly-robust successors, measured
against the world simulator's ground truth (the shape of Ma et al. 2018's Table 2).

For each seed the world runs its feedback loop for ``days + 1`` days; every method trains on the
same first ``days`` days with the same sizes and schedule, and is scored on the last day, as the
paper splits its logs by time. There the world knows for every impression whether it would have
converted had it been clicked (``conversion_potential``) and its true CVR, so CVR AUC is measured
over the entire impression space, beside the clicked-only AUC that logs allow (the paper's CVR AUC),
and calibration is measured against the true CVR. ``heldout_policy = "uniform"`` scores a day
displayed uniformly at random instead, which adds an exposure shift to the selection bias.

The default world is small (1,000 users, 300 ads) so that a few days of logs show each user often
enough for the id embeddings to learn the user-ad affinity through which clicks select conversions;
``world = {}`` (``--service-world``) runs the service's default world instead (docs/cvr.md).

Each method is a repository model (``models/<name>/config.toml``): its kind and method settings
(sampling rates, propensity floor, loss weights) come from there, so what is compared is what can
be served; the experiment sets only the sizes and schedule, the same for all.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.encoder import FeatureEncoder, fit_statistics
from training.evaluation.metrics import binned_means
from training.evaluation.world_heldout import entire_space_metrics, oracle_aucs, selection_bias, slot1_metrics
from training.experiments.settings.cvr import CVRExperimentConfig, method_models
from training.experiments.summary import STD_KIND, mean_std, plus_minus
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, predict
from training.fitting.settings import TrainingConfig
from training.logs.column_arrays import column_array, feature_columns
from training.models.registry import build_model
from training.torch_threads import using_torch_threads

logger = logging.getLogger(__name__)

METRICS = (
    "cvr_auc_entire_space",
    "cvr_auc_clicked",
    "ctcvr_auc",
    "ctr_auc",
    "cvr_calibration_error",
    "cvr_mean_pred_over_true",
    "ctcvr_slot1_calibration_error",
    "ctcvr_slot1_mean_pred_over_true",
    "ctr_slot1_mean_pred_over_true",
)
CALIBRATION_BINS = 10  # equal-count bins of pCVR in the plotted calibration curves
HELDOUT_SEED = 1_000_003  # the held-out day of seed s is simulated with HELDOUT_SEED + s


def calibration_curve(pcvr: np.ndarray, true_cvr: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, list]:
    """Mean predicted and mean true CVR in equal-count bins of the prediction."""
    predicted, true = binned_means(pcvr, true_cvr, bins)
    return {"predicted": predicted, "true": true}


def simulate(world: Any, config: CVRExperimentConfig, seed: int) -> tuple[Any, Any]:
    """(training logs, held-out day) of ``seed``: the feedback loop's first days and its next day."""
    if config.heldout_policy == "uniform":
        logs = world.simulate(config.days, config.requests_per_day, policy="feedback", seed=seed + 1)
        return logs, world.simulate(1, config.heldout_requests, policy="uniform", seed=HELDOUT_SEED + seed)
    loop = world.simulate(config.days + 1, config.requests_per_day, policy="feedback", seed=seed + 1)
    cut = config.days * config.requests_per_day * world.config.n_slots
    return loop.slice(0, cut), loop.slice(cut)


def run_seed(
    models: dict[str, dict[str, Any]], config: CVRExperimentConfig, seed: int
) -> tuple[dict, dict, dict, dict]:
    """One seed: the held-out day's selection bias, the true CVR's own AUCs (the ceiling), and
    per method (``models``: its kind and [model] settings, by label) its metrics and calibration curve."""
    from training.world import World, WorldConfig, feature_spec

    world = World(WorldConfig(**{"seed": 0, **config.world}))
    logs, heldout = simulate(world, config, seed)
    raw_spec = feature_spec(world.config)
    columns = feature_columns(logs, raw_spec)  # read once: the statistics are fitted on what is encoded
    spec = fit_statistics(raw_spec, columns)
    encoder = FeatureEncoder(spec)
    train = ImpressionTensors.from_table(logs, encoder, columns=columns)
    test = ImpressionTensors.from_table(heldout, encoder)
    # the oracle-propensity ablation's P(click | x, position): the world's true CTR times the examination
    oracle = column_array(logs, "true_ctr") * column_array(logs, "examination")
    train.tensors["oracle_propensity"] = torch.from_numpy(oracle.astype(np.float32))
    true_cvr = column_array(heldout, "true_cvr")
    training = TrainingConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=seed,
        validation_fraction=0.0,
    )
    metrics, curves = {}, {}
    for label in config.methods:
        started = time.perf_counter()
        torch.manual_seed(seed)
        model = build_model(models[label]["kind"], spec, models[label]["model"])
        fit(model, train, training, progress=False)
        outputs = predict(model, test)
        metrics[label] = entire_space_metrics(heldout, outputs) | slot1_metrics(heldout, outputs)
        curves[label] = calibration_curve(outputs["pcvr"], true_cvr)
        logger.info(
            "seed %d %-13s CVR AUC %.4f (clicked %.4f), calibration error %.4f, %.1fs",
            seed,
            label,
            metrics[label]["cvr_auc_entire_space"],
            metrics[label]["cvr_auc_clicked"],
            metrics[label]["cvr_calibration_error"],
            time.perf_counter() - started,
        )
    return selection_bias(heldout), oracle_aucs(heldout), metrics, curves


def run_cvr_experiment(root: Path, config: CVRExperimentConfig) -> dict[str, Any]:
    """The report of ``ctr experiment cvr``: per method, each metric's mean and std over seeds."""
    started = time.perf_counter()
    # what each method runs as, read once for every seed (`ctr experiment cvr` read it before torch's import to
    # check it): its repository model's kind and [model] merged with the row's overrides and the sizes (reported:
    # two esmm_blind configs gave two AUCs under one "config")
    models = method_models(root, config)
    biases, oracles, per_seed, curves = [], [], [], {}
    with using_torch_threads(config.torch_threads):
        for seed in range(config.seeds):
            bias, oracle, metrics, seed_curves = run_seed(models, config, seed)
            biases.append(bias)
            oracles.append(oracle)
            per_seed.append(metrics)
            curves = curves or seed_curves  # the plot shows seed 0
    methods = {
        label: {metric: mean_std([seed[label][metric] for seed in per_seed]) for metric in METRICS}
        for label in config.methods
    }
    calibrated = min(methods, key=lambda label: methods[label]["cvr_calibration_error"]["mean"])
    slot1 = min(methods, key=lambda label: methods[label]["ctcvr_slot1_calibration_error"]["mean"])
    report: dict[str, Any] = {
        "config": asdict(config),
        "repository": str(root),
        "method_models": models,
        "std_kind": STD_KIND,
        "selection_bias": {key: mean_std([b[key] for b in biases]) for key in biases[0]},
        "oracle_true_cvr": {key: mean_std([o[key] for o in oracles]) for key in oracles[0]},
        "methods": methods,
        "best_calibrated": calibrated,
        "best_calibrated_ctcvr_slot1": slot1,
        "calibration_curves_seed0": curves,
        "seconds": time.perf_counter() - started,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {config.torch_threads}",
    }
    if "ESMM" in methods and "BASE" in methods:
        gain = methods["ESMM"]["cvr_auc_entire_space"]["mean"] - methods["BASE"]["cvr_auc_entire_space"]["mean"]
        report["esmm_minus_base_cvr_auc_entire_space_points"] = 100.0 * gain
    return report


def format_table(report: dict[str, Any]) -> str:
    """Table 2 of the ESMM paper, extended: AUCs in percent, mean ± std over seeds."""
    columns = [
        ("CVR AUC (entire)", "cvr_auc_entire_space", 100.0),
        ("CVR AUC (clicked)", "cvr_auc_clicked", 100.0),
        ("CTCVR AUC", "ctcvr_auc", 100.0),
        ("CTR AUC", "ctr_auc", 100.0),
        ("CVR cal. error", "cvr_calibration_error", 1.0),
        ("mean pCVR / true", "cvr_mean_pred_over_true", 1.0),
        ("pCTCVR@1 cal. error", "ctcvr_slot1_calibration_error", 1.0),
        ("mean pCTCVR@1 / true", "ctcvr_slot1_mean_pred_over_true", 1.0),
    ]
    header = "| Model | " + " | ".join(title for title, _, _ in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for label, metrics in report["methods"].items():
        cells = []
        for _, key, scale in columns:
            cells.append(plus_minus(metrics[key], 2 if scale == 100.0 else 4, scale=scale))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    bias = report["selection_bias"]
    clicked, unclicked = bias["true_cvr_mean_clicked"]["mean"], bias["true_cvr_mean_unclicked"]["mean"]
    lines.append("")
    lines.append(
        f"selection bias: mean true CVR {clicked:.4f} on clicked vs {unclicked:.4f} on unclicked impressions"
        f" (x{clicked / unclicked:.2f}); best calibrated: {report['best_calibrated']} (pCVR),"
        f" {report['best_calibrated_ctcvr_slot1']} (pCTCVR at slot 1)"
    )
    oracle = report["oracle_true_cvr"]
    lines.append(
        f"the true CVR itself scores CVR AUC {100 * oracle['oracle_cvr_auc_entire_space']['mean']:.2f} (entire)"
        f" / {100 * oracle['oracle_cvr_auc_clicked']['mean']:.2f} (clicked)"
    )
    if "esmm_minus_base_cvr_auc_entire_space_points" in report:
        points = report["esmm_minus_base_cvr_auc_entire_space_points"]
        lines.append(f"ESMM - BASE, entire-space CVR AUC: {points:+.2f} points (Ma et al. 2018: +2.56)")
    return "\n".join(lines)
