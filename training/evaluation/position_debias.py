"""``ctr evaluate`` for a position-debiased CTR model: which pCTR would a position-1 slot see?

Every method trains on the same feedback-loop world logs as the served model and is scored on the
config's held-out day, displayed uniformly at random. The reference is the true position-1 click
probability (the world's position-free CTR; position 1 is always examined), and the AUC and log loss
use clicks drawn from it, i.e. the clicks each held-out impression would have had at position 1.

- ``naive``: the same network without bypass and lambda = 0, ignoring position;
- ``position_feature``: lambda = 0 with the bypass, so position (through its CTR b) is a feature,
  set to position 1 at inference;
- ``adversarial_bypass_<lambda>`` / ``adversarial_no_bypass_<lambda>``: the adversarial network;
- ``served``: the exported repository version, as ONNX Runtime runs it.
Comparison models skip the Bias-only epochs after training: they change no prediction.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from common.encoder import FeatureEncoder
from common.repository import versions
from common.roles import ROLE
from training.evaluation.metrics import auc, expected_calibration_error, log_loss
from training.evaluation.world_heldout import heldout_day, heldout_settings, run_exported, slot1_clicks, version_record
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, predict
from training.logs.column_arrays import column_array
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.pipeline import training_data
from training.position_ctr import position_ctr

logger = logging.getLogger(__name__)

LAMBDAS = (0.99, 0.9999, 0.99999)  # the adversarial models compared
CLICK_STREAM = 1_804_06909  # seeds the position-1 clicks of the held-out day


def methods(lambdas: tuple[float, ...] = LAMBDAS) -> dict[str, dict[str, Any]]:
    """Method name -> [model] overrides."""
    table: dict[str, dict[str, Any]] = {
        "naive": {"lam": 0.0, "bypass": False},
        "position_feature": {"lam": 0.0, "bypass": True},
    }
    for lam in lambdas:
        table[f"adversarial_bypass_{lam:g}"] = {"lam": lam, "bypass": True}
        table[f"adversarial_no_bypass_{lam:g}"] = {"lam": lam, "bypass": False}
    return table


def scores(pctr: np.ndarray, true_ctr: np.ndarray, clicks: np.ndarray) -> dict[str, float]:
    return {
        "rus_auc": auc(clicks, pctr),
        "rus_logloss": log_loss(clicks, pctr),
        "calibration_error": expected_calibration_error(pctr, true_ctr),
        "mean_pred_over_true": float(pctr.mean() / true_ctr.mean()),
    }


def evaluate_position_debiasing(root: Path, name: str, version: int | None = None) -> dict[str, Any]:
    """The comparison report of ``ctr evaluate`` for a model whose config says evaluation = "position_debias"."""
    config = ModelConfig.load(root, name)
    with tempfile.TemporaryDirectory() as work_dir:  # the same simulated logs `ctr train` trains on
        _, spec, data = training_data(config, None, None, Path(work_dir))
    table = heldout_day(config)
    true_ctr = column_array(table, "true_ctr")  # position-free: the click probability at position 1
    clicks = slot1_clicks(true_ctr, CLICK_STREAM)
    heldout = ImpressionTensors.from_table(table, FeatureEncoder(spec))
    report: dict[str, Any] = {
        "model": name,
        "heldout_policy": config.data.heldout_policy,
        "heldout": heldout_settings(config),
        "n_training_impressions": len(data),
        "n_heldout_impressions": int(table.num_rows),
        "true_ctr_mean": float(true_ctr.mean()),
        "training_position_ctr": {
            str(p): c for p, c in position_ctr(data.tensors["position"].numpy(), data.tensors["click"].numpy()).items()
        },
        "methods": {},
    }
    for method, overrides in methods().items():
        params = {**config.model, **overrides, "bias_epochs": 0}
        model = build_model(config.kind, spec, params, seed=config.training.seed)
        fit(model, data, config.training, progress=False)
        pctr = predict(model, heldout)["pctr"]
        report["methods"][method] = scores(pctr, true_ctr, clicks) | {"model": overrides}
        logger.info("%s: %s", method, report["methods"][method])
    if versions(root, name):
        manifest, outputs = run_exported(root, name, table, version)
        report |= version_record(manifest)  # the served model scored beside the methods: which one, by its sha256
        report["methods"]["served"] = scores(outputs["pctr"], true_ctr, clicks) | {"model": config.model}
        report |= _clipped_pcvr(root, outputs["pctr"], table)
    return report


def _clipped_pcvr(root: Path, pctr: np.ndarray, table: Any) -> dict[str, Any]:
    """How often pCVR = pCTCVR / pCTR needs clipping when the served ctcvr model is not this one."""
    ctcvr = ROLE["ctcvr"].default_model
    if not versions(root, ctcvr):
        return {}
    _, outputs = run_exported(root, ctcvr, table)
    ratio = outputs["pctcvr"] / np.maximum(pctr, 1e-12)
    return {"pcvr_ctcvr_model": ctcvr, "pcvr_clipped_fraction": float(np.mean(ratio > 1.0))}
