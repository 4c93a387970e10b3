"""Evaluating an exported model on a held-out log the user provides (``ctr evaluate NAME --logs``).

What is scored is what the service serves: the repository's ONNX version run by ONNX Runtime on
inputs from the shared encoder. Logs hold no ground truth beyond their labels, so the report gives
- AUC and log loss of pCTR (on every impression), pCTCVR (every impression) and pCVR (clicked
  impressions, the only ones whose conversion is observed), each with a bootstrap 95% interval
  (impressions resampled with replacement); a slot-1 model's pCTR and pCTCVR are the top slot's, so its
  log losses against clicks at lower slots also count the slot's lower examination, and the report adds
  ``ctr_logloss_at_slot`` / ``ctcvr_logloss_at_slot``: those of pCTR / pCTCVR times the logged slot's
  learned CTR ratio (rows at slots with a ratio);
- calibration overall and per position: the predicted CTR of a row is its pCTR times the learned CTR
  ratio of its position when ``model.json`` carries them (``"position": {"regime": "slot1",
  "ctr_ratios": [...]}``: the model predicts slot 1), else pCTR itself, and the report says which;
- ``ctr_logloss_constant``: the log loss of predicting the click rate of the rows the model's CTR log loss is
  measured on (a slot-1 model's at the logged slots: the rows at a slot with a ratio) for every one of them,
  with its interval, the reference that log loss must be below, and a warning when it is not (an audit's
  overfitted model reported a ctr_logloss of 0.6206 alone, where the constant gave 0.548); beside it the model's
  log loss minus the constant's over the same rows (``ctr_logloss_minus_constant``), with the normal interval
  of that paired difference, which the warning quotes to say whether it is beyond the rows' noise;
- a reliability diagram (PNG): observed against predicted rate in equal-count bins.
A metric that cannot be computed (one class only, e.g. no conversions) is ``null`` with a reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from common.path_text import path_text
from common.plural import counted
from common.repository import LOGGED, SLOT1
from training.evaluation.constant_baseline import (
    ConstantComparison,
    constant_key,
    constant_log_loss,
    difference_from_constant,
    difference_key,
    warn_if_worse_than_constant,
)
from training.evaluation.metrics import auc, auc_of_resamples, binned_means, log_loss
from training.evaluation.world_heldout import run_exported, version_record
from training.figure_file import save_figure
from training.logs.column_arrays import column_array
from training.logs.ctcvr_label import click_and_conversion
from training.logs.fingerprint import fingerprint
from training.logs.log_quality import defaulted_features
from training.logs.reading import read_logs

logger = logging.getLogger(__name__)
NO_CLICKS = "no click observed: predicted over observed has no value"  # a calibration entry's reason
# The log a version was trained on (its fingerprint is model.json's data_fingerprint) scored as if held out:
# a CTR AUC of 0.709 there against 0.671 on a fresh log of the same world, and nothing said so
TRAINING_LOGS = (
    "these are the logs %s v%d was trained on (their fingerprint is its data_fingerprint): its metrics on them "
    "are not held-out ones; evaluate on logs it has not seen"
)

# whose click rate the constant predicts, by the model's log loss it is the reference for (constant_reference)
CONSTANT_RATE = {
    "ctr_logloss": "this log's click rate",
    "ctr_logloss_at_slot": "the click rate of the rows at a slot with a ratio",
}
BOOTSTRAP_RESAMPLES = 200
RELIABILITY_BINS = 10


def evaluate_on_logs(
    root: Path,
    name: str,
    logs: Path,
    version: int | None = None,
    png: Path | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """The report of ``ctr evaluate NAME --logs LOGS`` (see the module docstring), with the reliability
    diagram written to ``png`` when given."""
    from common.repository import read_manifest
    from training.evaluation.served_version import exported_version

    version = exported_version(root, name, version)
    manifest = read_manifest(root, name, version)
    spec = manifest.feature_spec
    table = read_logs(logs, spec)
    clipped: Counter = Counter()
    manifest, outputs = run_exported(root, name, table, version, clipped)
    click = column_array(table, "click").astype(bool)
    conversion = column_array(table, "conversion").astype(bool)
    ctcvr = click_and_conversion(click, conversion)
    position = column_array(table, "position").astype(np.int64)
    rng = np.random.default_rng(seed)
    metrics: dict[str, Any] = {}
    if "pctr" in outputs:
        metrics |= _scored("ctr", click, outputs["pctr"], "clicks", rng, resamples)
    if "pctcvr" in outputs:
        metrics |= _scored("ctcvr", ctcvr, outputs["pctcvr"], "conversions", rng, resamples)
    if "pcvr" in outputs:
        metrics |= _scored(
            "cvr_clicked", conversion[click], outputs["pcvr"][click], "conversions of clicks", rng, resamples
        )
    if "score" in outputs:  # a retrieval model: the sigmoid of its query-item similarity, against the clicks
        metrics |= _scored("click", click, outputs["score"], "clicks", rng, resamples)
    regime = manifest.position
    factor = slot_factor(position, regime)
    at_slot_rows: dict[str, np.ndarray] = {}
    at_slot_predictions: dict[str, np.ndarray] = {}
    for key, labels in (("ctr", click), ("ctcvr", ctcvr)):
        if factor is not None and f"p{key}" in outputs:
            at_slot = np.asarray(outputs[f"p{key}"], dtype=np.float64).reshape(-1) * factor
            rows = np.isfinite(at_slot)  # the rows at a slot with a ratio: all of them, or fewer than the plain loss
            at_slot_rows[key], at_slot_predictions[key] = rows, at_slot
            metrics[f"{key}_logloss_at_slot"] = {"n_impressions": int(rows.sum())} | (
                _with_interval(log_loss, labels[rows], at_slot[rows], rng, resamples)
                if rows.any()
                else {"value": None, "reason": "no row is at a slot with a CTR ratio in model.json"}
            )
    if "pctr" in outputs and click.size:
        pctr = at_slot_predictions.get("ctr", outputs["pctr"])  # what the CTR log loss the constant is beside scores
        metrics |= constant_reference(name, metrics, click, pctr, at_slot_rows.get("ctr"), rng, resamples)
    logs_fingerprint = fingerprint(logs)
    if logs_fingerprint == manifest.data_fingerprint:
        logger.warning(TRAINING_LOGS, name, manifest.version)
    report: dict[str, Any] = {
        **version_record(manifest),
        "logs": path_text(logs),
        # which log and which model, whatever their paths hold by the time the report is read
        "logs_fingerprint": logs_fingerprint,
        "training_logs": logs_fingerprint == manifest.data_fingerprint,  # the version's own: not held out
        "n_impressions": int(table.num_rows),
        "n_clicks": int(click.sum()),
        "n_conversions": int(conversion.sum()),
        # optional features the log has no column for: every row scored with the feature's default
        "defaulted_features": defaulted_features(table.column_names, spec),
        # numeric values outside the version's training range, by feature: scored at its edge, as served
        "clipped_values": {feature.name: clipped[feature.name] for feature in spec.numeric},
        "bootstrap": {"resamples": resamples, "level": 0.95, "unit": "impression", "seed": seed},
        "metrics": metrics,
    }
    if "pctr" in outputs:
        report["calibration"] = calibration(outputs["pctr"], click, position, regime)
        if png is not None:
            report["reliability_png"] = str(reliability_png(outputs["pctr"], click, position, regime, png))
    return report


def summary(report: dict[str, Any]) -> list[str]:
    """The report as lines for the terminal: each metric with its interval, then the calibration."""
    lines = [
        f"{report['model']} v{report['version']} on {report['logs']}: "
        f"{counted(report['n_impressions'], 'impression')}, {counted(report['n_clicks'], 'click')}, "
        f"{counted(report['n_conversions'], 'conversion')}"
    ]
    if report.get("defaulted_features"):
        lines.append(f"no column for {report['defaulted_features']}: every row scored with their defaults")
    clipped = {feature: n for feature, n in report.get("clipped_values", {}).items() if n}
    if clipped:
        lines.append(f"values outside the training range, scored at its edge as the service does: {clipped}")
    for key, metric in report["metrics"].items():
        if metric["value"] is None:
            lines.append(f"{key:<22} null ({metric['reason']})")
        else:
            interval = metric.get("ci95")
            shown = f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else f"(no interval: {metric['reason']})"
            lines.append(f"{key:<22} {metric['value']:.4f}  95% CI {shown}")
        if metric.get("worse_than_constant"):  # the reference's entry, after the model's own: its warning
            lines.append(f"  {compared_with_constant(report['model'], report['metrics'], metric).warning()}")
    calibration = report.get("calibration")
    if calibration:
        lines.append(f"calibration: {calibration['prediction']}")
        for entry in [{"position": "all", **calibration["overall"]}, *calibration["per_position"]]:
            predicted = entry["predicted_ctr"]
            left_out = entry.get("rows_left_out")
            left_out = f"  ({counted(left_out, 'row')} without a CTR ratio left out)" if left_out else ""
            lines.append(
                f"  position {entry['position']:<4} observed CTR {entry['observed_ctr']:.4f}  predicted "
                + ("n/a" if predicted is None else f"{predicted:.4f}")
                + left_out
            )
    return lines


def constant_reference(
    name: str,
    metrics: dict[str, Any],
    click: np.ndarray,
    pctr: np.ndarray,
    at_slot_rows: np.ndarray | None,
    rng: np.random.Generator,
    resamples: int,
) -> dict[str, Any]:
    """``ctr_logloss_constant``: the log loss of predicting the click rate of the rows the model's CTR log loss is
    measured on for every one of them (the best constant for them), with its interval, the reference that log
    loss must be below, and the model's log loss minus it over the same rows (``ctr_logloss_minus_constant``,
    ``pctr`` being what that log loss scores: ``difference_from_constant``); a warning when the model is not below
    it, which says whether the difference is beyond the rows' noise (training/evaluation/constant_baseline.py). A
    slot-1 model's (``ctr_logloss_at_slot``) is over ``at_slot_rows`` alone, the rows at a slot with a ratio, and so
    is the constant. Over every row, the slots beyond the ratios (fewer clicks, a lower entropy) lowered the
    constant alone: on an 8-slot log of 160,000 rows, 100,000 of them at esmm's 5 slots with a ratio, it warned of
    esmm's 0.1301 against 0.1104 (rate 0.0232), where the constant on esmm's own rows is 0.1385 (rate 0.0311)."""
    key = "ctr_logloss" if at_slot_rows is None else "ctr_logloss_at_slot"
    compared = click if at_slot_rows is None else click[at_slot_rows]
    if compared.size == 0:
        return {constant_key("ctr_logloss"): {"value": None, "reason": metrics[key]["reason"], "compared_with": key}}
    constant = _with_interval(lambda labels, _: constant_log_loss(labels), compared, compared, rng, resamples)
    constant |= {"n_impressions": int(compared.size), "rate": float(compared.mean()), "compared_with": key}
    predicted = pctr if at_slot_rows is None else pctr[at_slot_rows]
    reference = {
        constant_key("ctr_logloss"): constant,
        difference_key(key): difference_from_constant(compared, predicted, constant["rate"]),
    }
    constant["worse_than_constant"] = warn_if_worse_than_constant(
        compared_with_constant(name, metrics | reference, constant)
    )
    return reference


def compared_with_constant(name: str, metrics: dict[str, Any], constant: dict[str, Any]) -> ConstantComparison:
    """Model ``name``'s log loss against the ``constant`` entry of ``metrics``: the warning's, and the summary's
    line of it."""
    key = constant["compared_with"]
    rate = (CONSTANT_RATE[key], constant["rate"])
    difference = metrics.get(difference_key(key))
    return ConstantComparison(
        name, key, metrics[key].get("value"), constant["value"], rate, "row", difference, "clicks"
    )


def _one_class_reason(labels: np.ndarray, what: str) -> str | None:
    if labels.size == 0:
        return f"no impressions to score ({what})"
    if not labels.any():
        return f"no {what} in the log: one class only"
    if labels.all():
        return f"every impression has {what}: one class only"
    return None


# the fewest rows of a class (of either, where both are present) a bootstrap interval is given for: with one
# click among 200 rows, every resample holding it gave that click's rank again, an AUC of 0.76 "[0.71, 0.82]"
# (a data-scientist audit), and one clicked row a log loss interval of zero width. A rule of thumb, not a
# coverage guarantee: the percentile bootstrap is known to be too narrow with few events.
MIN_CLASS_ROWS = 10


def _scored(
    key: str, labels: np.ndarray, scores: np.ndarray, what: str, rng: np.random.Generator, resamples: int
) -> dict[str, Any]:
    """{key_auc, key_logloss}: value and bootstrap 95% interval each, or null with a reason."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    reason = _one_class_reason(labels, what)
    if labels.size == 0:
        return {f"{key}_auc": {"value": None, "reason": reason}, f"{key}_logloss": {"value": None, "reason": reason}}
    too_few = _too_few_for_an_interval(labels, what)
    result: dict[str, Any] = {f"{key}_logloss": _with_interval(log_loss, labels, scores, rng, resamples, too_few)}
    if reason is not None:
        result[f"{key}_auc"] = {"value": None, "reason": f"AUC needs both classes; {reason}"}
    else:
        result[f"{key}_auc"] = _with_interval(auc, labels, scores, rng, resamples, too_few, auc_of_resamples)
    return result


def _too_few_for_an_interval(labels: np.ndarray, what: str) -> str | None:
    """Why the rows are too few for a bootstrap interval (``MIN_CLASS_ROWS``), or None."""
    positives = int(np.count_nonzero(labels))
    counts = {f"with {what}": positives, f"without {what}": labels.size - positives}
    present = {name: n for name, n in counts.items() if n}
    name, fewest = min(present.items(), key=lambda item: item[1])
    if fewest >= MIN_CLASS_ROWS:
        return None
    return (
        f"{counted(fewest, 'impression')} {name}: too few for a bootstrap interval "
        f"(it needs at least {MIN_CLASS_ROWS} of each class present)"
    )


def _with_interval(
    metric: Any,
    labels: np.ndarray,
    scores: np.ndarray,
    rng: np.random.Generator,
    resamples: int,
    too_few: str | None = None,
    of_resamples: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], float]] | None = None,
) -> dict[str, Any]:
    """The metric and its percentile bootstrap 95% interval (resamples with one class only are skipped); no
    interval, and ``too_few`` as the reason, where the rows are too few for one. ``of_resamples(labels, scores)``,
    where given, returns the metric of the rows a resample draws without copying them (the AUC's sorts once: a
    sort per resample made the AUC's interval take 62 s at a million rows, 10 s now, most of it the draws); the
    draws are the same either way, and so is the interval."""
    value = metric(labels, scores)
    if too_few is not None:
        return {"value": float(value), "ci95": None, "reason": too_few}
    if resamples == 0:  # asked for (`--resamples 0`): a log of 1e7 rows takes minutes per interval
        return {"value": float(value), "ci95": None, "reason": "no interval: --resamples 0"}
    of_rows = None if of_resamples is None else of_resamples(labels, scores)
    draws = []
    for _ in range(resamples):
        rows = rng.integers(0, labels.size, labels.size)
        drawn = metric(labels[rows], scores[rows]) if of_rows is None else of_rows(rows)
        if np.isfinite(drawn):
            draws.append(drawn)
    if len(draws) < max(2, resamples // 2):
        return {"value": float(value), "ci95": None, "reason": "too few resamples hold both classes for an interval"}
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"value": float(value), "ci95": [float(low), float(high)]}


def slot_factor(position: np.ndarray, regime: dict[str, Any] | None) -> np.ndarray | None:
    """Each row's learned CTR ratio of its logged slot over slot 1 (NaN at a slot without one), which turns a
    slot-1 probability into the logged slot's; None for a model that carries no such ratios."""
    if not (regime and regime.get("regime") == SLOT1 and regime.get("ctr_ratios")):
        return None
    ratios = np.asarray(regime["ctr_ratios"], dtype=np.float64)
    known = (position >= 1) & (position <= ratios.size)
    return np.where(known, ratios[np.clip(position, 1, ratios.size) - 1], np.nan)


def predicted_ctr(pctr: np.ndarray, position: np.ndarray, regime: dict[str, Any] | None) -> tuple[np.ndarray, str]:
    """Each row's predicted CTR at its logged position, and how it was obtained."""
    pctr = np.asarray(pctr, dtype=np.float64).reshape(-1)
    factor = slot_factor(position, regime)
    if factor is not None:
        return pctr * factor, "pctr (slot 1) x the position's learned CTR ratio from model.json"
    if regime and regime.get("regime") == LOGGED:
        return pctr, "pctr of a position-blind model (the average logged slot), without a position ratio"
    return pctr, "pctr as served, without a position ratio: model.json carries no position ctr_ratios"


def calibration(
    pctr: np.ndarray, click: np.ndarray, position: np.ndarray, regime: dict[str, Any] | None
) -> dict[str, Any]:
    """Predicted against observed CTR overall and per logged position."""
    predicted, how = predicted_ctr(pctr, position, regime)
    ratios = (regime or {}).get("ctr_ratios") or []
    per_position = []
    for slot in np.unique(position):
        rows = position == slot
        entry: dict[str, Any] = {
            "position": int(slot),
            "n_impressions": int(rows.sum()),
            "n_clicks": int(click[rows].sum()),
            "observed_ctr": float(click[rows].mean()),
            "mean_pctr": float(np.mean(pctr[rows])),
            "ctr_ratio": float(ratios[slot - 1]) if 1 <= slot <= len(ratios) else None,
        }
        mean_predicted = float(np.mean(predicted[rows]))
        entry["predicted_ctr"] = mean_predicted if np.isfinite(mean_predicted) else None
        entry["predicted_over_observed"] = _ratio(entry["predicted_ctr"], entry["observed_ctr"])
        if entry["predicted_ctr"] is None:
            entry["reason"] = f"model.json has no CTR ratio for position {int(slot)}"
        elif entry["n_clicks"] == 0:
            entry["reason"] = NO_CLICKS
        per_position.append(entry)
    scored = np.isfinite(predicted)  # the rows of positions with a CTR ratio: both means over those alone
    overall = {
        "observed_ctr": float(click[scored].mean()) if scored.any() else float(click.mean()),
        "predicted_ctr": float(predicted[scored].mean()) if scored.any() else None,
    }
    overall["predicted_over_observed"] = _ratio(overall["predicted_ctr"], overall["observed_ctr"])
    if scored.any() and not click[scored].any():
        overall["reason"] = NO_CLICKS
    elif scored.any() and not scored.all():
        overall["rows_left_out"] = int((~scored).sum())
        overall["reason"] = "rows at positions without a CTR ratio in model.json are left out of both means"
    elif not scored.any():
        overall["reason"] = "no row is at a position with a CTR ratio in model.json: nothing to compare"
    return {
        "prediction": how,
        "position_regime": (regime or {}).get("regime"),
        "overall": overall,
        "per_position": per_position,
    }


def _ratio(predicted: float | None, observed: float) -> float | None:
    return None if predicted is None or observed == 0 else predicted / observed


def reliability_png(
    pctr: np.ndarray, click: np.ndarray, position: np.ndarray, regime: dict[str, Any] | None, path: Path
) -> Path:
    """Observed CTR against predicted CTR in equal-count bins of the prediction, written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted, how = predicted_ctr(pctr, position, regime)
    scored = np.isfinite(predicted)
    x, y = binned_means(predicted[scored], click[scored], RELIABILITY_BINS)
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    top = max(max(x, default=0.0), max(y, default=0.0)) * 1.1 or 1.0
    axes.plot([0, top], [0, top], color="grey", linewidth=1, label="perfect calibration")
    axes.plot(x, y, marker="o", label=f"{len(x)} equal-count bins")
    title = "pCTR x position CTR ratio" if "ratio from" in how else "pCTR as served"
    axes.set(xlabel="predicted CTR", ylabel="observed CTR", title=title, xlim=(0, top), ylim=(0, top))
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    save_figure(figure, path, dpi=100)
    plt.close(figure)
    return path
