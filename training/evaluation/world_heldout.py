"""Evaluating an exported model on the world's held-out impressions, against ground truth.

What is scored is what the service serves: the repository's latest ONNX version, run by ONNX Runtime
on inputs from the shared encoder, its pCTR, pCTCVR and pCVR the numbers ``/v1/score`` answers
(``served_probabilities``: float64, pCTCVR = pCTR x pCVR, not the graph's float32 product). The held-out
day is displayed by the config's held-out policy (uniformly random by default, so no logging policy's
ranking leaks into it), and the world knows
for every impression whether it would have converted had it been clicked, so CVR is measured over
the entire impression space, not only on clicked impressions as logs allow.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.repository import SLOT1, Manifest
from training.evaluation.constant_baseline import (
    ConstantComparison,
    constant_key,
    constant_log_loss,
    difference_from_constant,
    difference_key,
    warn_if_worse_than_constant,
)
from training.evaluation.metrics import auc, expected_calibration_error, log_loss
from training.logs.column_arrays import column_array, feature_columns

if TYPE_CHECKING:  # the world and the model configs need torch; scoring (run_exported) is ONNX Runtime only
    from training.model_config import ModelConfig

CHUNK_ROWS = 65_536


def run_exported(
    root: Path, name: str, table: Any, version: int | None = None, clipped: Counter | None = None
) -> tuple[Manifest, dict[str, np.ndarray]]:
    """The exported model's outputs for every row of ``table`` as served (``as_served``), the version checked
    as the service checks it (training/evaluation/served_version.py); returns (the version's manifest, outputs).
    ``clipped`` counts, by feature, the values outside the version's training range, clipped as the service
    clips them."""
    from training.evaluation.served_version import exported_version, scoring_model

    version = exported_version(root, name, version)
    model = scoring_model(root, name, version)
    if clipped is not None:
        model.encoder.clipped = clipped
    spec = model.manifest.feature_spec
    encoded = model.encoder.encode(feature_columns(table, spec), table.num_rows)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in model.output_names}
    for start in range(0, table.num_rows, CHUNK_ROWS):
        for n, value in model.run(encoded.take(slice(start, start + CHUNK_ROWS)).as_inputs()).items():
            parts[n].append(value)
    return model.manifest, as_served({n: np.concatenate(v) for n, v in parts.items()})


def as_served(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A model's outputs with its pCTR, pCTCVR and pCVR replaced by the numbers ``/v1/score`` answers when
    it fills both roles (``served_probabilities``, float64): a report on the version "as served" measures
    them, not the graph's float32 pctcvr. A model with neither pcvr nor pctcvr (a CTR model, a retrieval
    graph's score) keeps its outputs."""
    from service.score.pipeline import served_probabilities

    if "pctr" not in outputs or not {"pcvr", "pctcvr"} & outputs.keys():
        return outputs
    served = dict(zip(("pctr", "pctcvr", "pcvr"), served_probabilities(outputs, outputs), strict=True))
    return outputs | {key: np.asarray(served[key], dtype=np.float64) for key in served if key in outputs}


def version_record(manifest: Manifest) -> dict[str, Any]:
    """Which version a report scored, whatever the repository holds by the time it is read: versions are not
    committed (models/*/[0-9]*/ is ignored), so "esmm v1" is another model on each machine; its sha256 is not."""
    return {"model": manifest.name, "version": manifest.version, "onnx_sha256": manifest.onnx_sha256}


def heldout_settings(config: ModelConfig) -> dict[str, Any]:
    """Everything that determines the config's held-out day (``heldout_day``), for a report to record: the
    [data] heldout_* settings and every [world] setting. They are read from config.toml as it is when the
    report is made, so a report without them could not say which day its metrics were measured on."""
    from training.config_world import world_settings

    data = config.data
    return {
        "policy": data.heldout_policy,
        "requests": data.heldout_requests,
        "seed": data.heldout_seed,
        "world": world_settings(config),
    }


def heldout_day(config: ModelConfig) -> Any:
    """The config's held-out world day (uniformly random display by default), as a pyarrow table."""
    from training.config_world import world_of

    settings = heldout_settings(config)
    return world_of(config).simulate(
        days=1, requests_per_day=settings["requests"], policy=settings["policy"], seed=settings["seed"]
    )


def slot1_clicks(true_ctr: np.ndarray, stream: int) -> np.ndarray:
    """A click per held-out impression as if it were shown at slot 1 (examination 1): True with
    probability ``true_ctr``, drawn from the seed ``stream`` (each report keeps its own, so that its
    numbers stay those it published)."""
    return np.random.default_rng(stream).random(true_ctr.size) < true_ctr


def evaluate_on_world(root: Path, name: str, version: int | None = None) -> dict[str, Any]:
    """The report of ``ctr evaluate``: AUCs, log losses and calibration on a held-out world day."""
    from training.model_config import ModelConfig

    config = ModelConfig.load(root, name)
    data = config.data
    table = heldout_day(config)
    manifest, outputs = run_exported(root, name, table, version)
    report: dict[str, Any] = {
        **version_record(manifest),
        "heldout_policy": data.heldout_policy,
        "heldout": heldout_settings(config),
        "n_impressions": int(table.num_rows),
        # "slot1": the probabilities are the top slot's, so slot1_metrics measure them (entire_space_metrics
        # compare them with clicks at the slot displayed); "logged": position-blind, the other way round
        "position_regime": manifest.regime,
    }
    metrics = entire_space_metrics(table, outputs) | slot1_metrics(table, outputs)
    metrics |= constant_metrics(table, outputs)
    if "pctr" in outputs:  # the log loss that measures the model's regime: slot 1's, or the displayed slot's
        slot1 = manifest.regime == SLOT1
        key = "ctr_slot1_logloss" if slot1 else "ctr_logloss"
        column, whose, positives = (
            ("true_ctr", "the day's mean slot-1 CTR", "expected slot-1 clicks")
            if slot1
            else ("click", "the day's click rate", "clicks")
        )
        labels = column_array(table, column)
        rate = (whose, float(np.mean(labels)))
        difference = metrics[difference_key(key)] = difference_from_constant(labels, outputs["pctr"], rate[1])
        row = "held-out impression"
        comparison = ConstantComparison(
            name, key, metrics[key], metrics[constant_key(key)], rate, row, difference, positives
        )
        warn_if_worse_than_constant(comparison)
    return report | selection_bias(table) | oracle_aucs(table) | metrics


def constant_metrics(table: Any, outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """The reference beside each log loss of ``entire_space_metrics`` and ``slot1_metrics`` (``<key>_constant``):
    that of predicting the day's own rate for every impression (the best constant: a model not below it learnt
    nothing that holds out of its training rows), of clicks and of conversions, at the displayed slot and at
    slot 1 (an expected log loss, against the true slot-1 probabilities, as the slot-1 ones are)."""
    click = column_array(table, "click").astype(bool)
    true_ctr = column_array(table, "true_ctr")
    report: dict[str, float] = {}
    if "pctr" in outputs:
        report[constant_key("ctr_logloss")] = constant_log_loss(click)
        report[constant_key("ctr_slot1_logloss")] = constant_log_loss(true_ctr)
    if "pctcvr" in outputs:
        potential = column_array(table, "conversion_potential").astype(bool)
        report[constant_key("ctcvr_logloss")] = constant_log_loss(click & potential)
        report[constant_key("ctcvr_slot1_logloss")] = constant_log_loss(true_ctr * column_array(table, "true_cvr"))
    return report


def selection_bias(table: Any) -> dict[str, Any]:
    """Counts of a world table, and the size of its sample-selection bias: the mean true CVR of
    clicked impressions against that of unclicked ones (what a CVR model fitted on clicks misses)."""
    click = column_array(table, "click").astype(bool)
    true_cvr = column_array(table, "true_cvr")
    return {
        "n_clicks": int(click.sum()),
        "n_conversions": int((click & column_array(table, "conversion_potential").astype(bool)).sum()),
        "true_cvr_mean_clicked": float(true_cvr[click].mean()),
        "true_cvr_mean_unclicked": float(true_cvr[~click].mean()),
    }


def oracle_aucs(table: Any) -> dict[str, float]:
    """The ceiling: the AUCs of ``entire_space_metrics`` scored with the world's true probabilities."""
    click = column_array(table, "click").astype(bool)
    potential = column_array(table, "conversion_potential").astype(bool)
    true_cvr = column_array(table, "true_cvr")
    observed_ctr = column_array(table, "true_ctr") * column_array(table, "examination")
    return {
        "oracle_ctr_auc": auc(click, observed_ctr),
        "oracle_cvr_auc_entire_space": auc(potential, true_cvr),
        "oracle_cvr_auc_clicked": auc(potential[click], true_cvr[click]),
        "oracle_ctcvr_auc": auc(click & potential, observed_ctr * true_cvr),
    }


def entire_space_metrics(table: Any, outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Metrics of ``outputs`` (pctr / pcvr / pctcvr, whichever are present, one per row of the world
    table ``table``) against the table's ground truth, over every displayed impression."""
    click = column_array(table, "click").astype(bool)
    potential = column_array(table, "conversion_potential").astype(bool)  # would convert if clicked
    ctcvr = click & potential
    true_cvr = column_array(table, "true_cvr")
    observed_ctr = column_array(table, "true_ctr") * column_array(table, "examination")
    report: dict[str, float] = {}
    if "pctr" in outputs:
        pctr = outputs["pctr"]
        report |= {
            "ctr_auc": auc(click, pctr),
            "ctr_logloss": log_loss(click, pctr),
            "ctr_calibration_error": expected_calibration_error(pctr, observed_ctr),
            "ctr_mean_pred_over_observed": float(pctr.mean() / observed_ctr.mean()),
        }
    if "pcvr" in outputs:
        pcvr = outputs["pcvr"]
        report |= {
            "cvr_auc_entire_space": auc(potential, pcvr),
            "cvr_auc_clicked": auc(potential[click], pcvr[click]),
            "cvr_calibration_error": expected_calibration_error(pcvr, true_cvr),
            "cvr_mean_pred_over_true": float(pcvr.mean() / true_cvr.mean()),
        }
    if "pctcvr" in outputs:
        report |= {
            "ctcvr_auc": auc(ctcvr, outputs["pctcvr"]),
            "ctcvr_logloss": log_loss(ctcvr, outputs["pctcvr"]),
        }
    return report


def slot1_metrics(table: Any, outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """pCTR and pCTCVR (whichever are present) against the truth at the top slot (examination 1), whatever
    slot was displayed: what a client pricing slot 1 with these numbers gets, and what a slot-1 model
    (``position_regime`` "slot1") predicts. ``entire_space_metrics`` compares pCTR with the clicks at the
    displayed slot instead, which is the right reference only for a position-blind model, and off by the
    slot's examination for a slot-1 one (×2 on a uniform day over 5 slots). The log losses are expected
    ones, against the true slot-1 probabilities (no clicks are drawn): cross-entropies."""
    true_ctr = column_array(table, "true_ctr")
    report: dict[str, float] = {}
    if "pctr" in outputs:
        pctr = outputs["pctr"]
        report |= {
            "oracle_ctr_slot1_logloss": log_loss(true_ctr, true_ctr),  # the floor: the slot-1 click's entropy
            "ctr_slot1_logloss": log_loss(true_ctr, pctr),
            "ctr_slot1_calibration_error": expected_calibration_error(pctr, true_ctr),
            "ctr_slot1_mean_pred_over_true": float(pctr.mean() / true_ctr.mean()),
        }
    if "pctcvr" in outputs:
        pctcvr = outputs["pctcvr"]
        true_ctcvr = true_ctr * column_array(table, "true_cvr")
        report |= {
            "oracle_ctcvr_slot1_logloss": log_loss(true_ctcvr, true_ctcvr),
            "ctcvr_slot1_logloss": log_loss(true_ctcvr, pctcvr),
            "ctcvr_slot1_calibration_error": expected_calibration_error(pctcvr, true_ctcvr),
            "ctcvr_slot1_mean_pred_over_true": float(pctcvr.mean() / true_ctcvr.mean()),
        }
    return report


def evaluate(root: Path, name: str, version: int | None = None) -> dict[str, Any]:
    """The report the model's config names (``evaluation = ...``, checked as the config loads; the kind's
    own report by default)."""
    import importlib

    from training.model_config import EVALUATIONS, ModelConfig

    module, function = EVALUATIONS[ModelConfig.load(root, name).evaluation].split(":")
    return getattr(importlib.import_module(module), function)(root, name, version)
