"""Reproduction of Moore et al. 2018, section 5: removing a feedback loop's position bias adversarially.

Runs the synthetic feedback loop (``feedback_loop.py``), then trains the adversarial network with and
without its bypass tower on the last two days of logs, b being the position CTR of each row's
position over those days, for each lambda of a reverse log scale and several initialisations, and
measures AUC on the feedback-loop (FL) data and on a held-out set drawn from D uniformly (RUS), and
the Bias network's MSE on b after its extra epochs. Writes a JSON report, a PNG like the paper's
Figure 4, and returns the table rows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.features import Feature, FeatureSpec
from training.dataset import ImpressionTensors
from training.experiments.feedback_loop import (
    FeedbackLoopConfig,
    Rows,
    draw,
    fit_logistic,
    logistic_scores,
    simulate,
)
from training.fit import TrainingConfig, fit
from training.metrics import auc, log_loss
from training.models.adversarial_ctr import AdversarialCTR, AdversarialCTRConfig
from training.position_ctr import position_ctr, position_ctr_per_row

logger = logging.getLogger(__name__)

LAMBDAS = (0.0, 0.9, 0.99, 0.999, 0.9999, 0.99999)  # the paper's reverse log scale
VARIANTS = {"bypass": True, "no_bypass": False}
PAPER = {"last_day_position1_ctr": 0.464, "naive_b_mse": 0.00078, "rus_auc_gain_0_to_0.9999": 0.126}


@dataclass
class Moore2018Config:
    loop: FeedbackLoopConfig = field(default_factory=FeedbackLoopConfig)
    lambdas: tuple[float, ...] = LAMBDAS
    initialisations: int = 10  # the paper's 10 weight initialisations per model
    epochs: int = 100  # main alternating training (paper: 100)
    bias_epochs: int = 100  # Bias network alone afterwards (paper: 100)
    batch_size: int = 100  # paper: minibatch 100
    learning_rate: float = 0.01  # paper: SGD, lr 0.01

    def __post_init__(self) -> None:
        if self.initialisations < 1 or self.epochs < 1:
            raise ValueError("initialisations and epochs must be >= 1")


def quick_config(r: float = 0.0, seed: int = 0) -> Moore2018Config:
    """A small version for tests: the same pipeline on a tenth of everything."""
    loop = FeedbackLoopConfig(reservoir=10_000, k=200, candidates_per_set=1_000, days=10, rus=5_000, r=r, seed=seed)
    return Moore2018Config(loop=loop, lambdas=(0.0, 0.99, 0.9999), initialisations=2, epochs=5, bias_epochs=5)


def _spec(n_features: int) -> FeatureSpec:
    return FeatureSpec(tuple(Feature(f"x{j}", "numeric", "candidate") for j in range(n_features)))


def _tensors(rows: Rows, mean: np.ndarray, std: np.ndarray, b: np.ndarray) -> dict[str, torch.Tensor]:
    """Model inputs of ``rows``, standardised with the given statistics."""
    n = len(rows)
    return {
        "categorical": torch.zeros((n, 0), dtype=torch.int64),
        "numeric": torch.from_numpy(((rows.x - mean) / std).astype(np.float32)),
        "click": torch.from_numpy(rows.click.astype(np.int64)),
        "conversion": torch.zeros(n, dtype=torch.int64),
        "position": torch.from_numpy(rows.position.astype(np.int64)),
        "b": torch.from_numpy(b.astype(np.float32)),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def train_variant(
    config: Moore2018Config, bypass: bool, lam: float, seed: int, fl: dict, rus: dict, spec: FeatureSpec
) -> dict[str, float]:
    """One initialisation of one model: its AUCs, the Bias network's MSEs and the bypass's prediction gap."""
    torch.manual_seed(seed)
    model = AdversarialCTR(spec, AdversarialCTRConfig(lam=lam, bypass=bypass, bias_epochs=config.bias_epochs))
    training = TrainingConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=seed,
        validation_fraction=0.0,
    )
    fit(model, ImpressionTensors(fl), training, progress=False)
    model.eval()
    with torch.no_grad():
        fl_pred = model.predict_at(fl["categorical"], fl["numeric"], fl["b"]).numpy()  # each row's own b
        rus_pred = model(rus["categorical"], rus["numeric"])["pctr"].numpy()  # b fixed to the position-1 CTR
        ctr = sorted(set(fl["b"].tolist()), reverse=True)
        at = [model.predict_at(fl["categorical"], fl["numeric"], torch.full_like(fl["b"], c)).mean() for c in ctr]
    return {
        "fl_auc": auc(fl["click"].numpy(), fl_pred),
        "rus_auc": auc(rus["click"].numpy(), rus_pred),
        "rus_logloss": log_loss(rus["click"].numpy(), rus_pred),
        "fl_b_mse": model.bias_mse(fl["categorical"], fl["numeric"], fl["b"]),
        "rus_b_mse": model.bias_mse(rus["categorical"], rus["numeric"], rus["b"]),
        "bypass_prediction_gap": float(at[0] - at[-1]),  # mean pCTR at b = p1 minus at b = p2 (Figure 4e)
    }


def run(config: Moore2018Config) -> dict[str, Any]:
    """The whole experiment; returns the JSON report."""
    torch.set_num_threads(1)  # tiny networks: threads only add overhead
    loop = simulate(config.loop)
    window = loop.window
    window_ctr = position_ctr(window.position, window.click)
    b = position_ctr_per_row(window.position, window.click)
    # standardised with the statistics of the whole candidate pool (the reservoir), which the ad system
    # knows; the shown rows' own statistics would put most of D tens of deviations away (docs/moore2018.md)
    mean, std = loop.reservoir_mean, loop.reservoir_std
    # RUS rows get a random position, and b = that position's CTR in the window: features cannot predict it
    rus_rows = loop.rus
    rus_position = np.random.default_rng(config.loop.seed + 1).integers(1, 3, len(rus_rows))
    rus_b = np.array([window_ctr[p] for p in (1, 2)])[rus_position - 1]
    fl = _tensors(window, mean, std, b)
    rus = _tensors(Rows(rus_rows.x, rus_rows.y, rus_position, rus_rows.y), mean, std, rus_b)
    # the ideal: the same logistic regression trained on a fresh RUS draw as large as the window
    ideal_train = draw(np.random.default_rng([config.loop.seed, 2018]), len(window), config.loop)
    ideal = fit_logistic(ideal_train.x, ideal_train.y, config.loop.l2)
    y_rus = rus_rows.y
    report: dict[str, Any] = {
        "config": {**asdict(config), "loop": asdict(config.loop)},
        "paper": PAPER,
        "position_ctr_by_day": loop.position_ctr_by_day,
        "last_day_position1_ctr": loop.position_ctr_by_day[-1][0],
        "window_position_ctr": {str(p): c for p, c in window_ctr.items()},
        "naive_b_mse": float(np.mean((b - b.mean()) ** 2)),  # predicting the mean CTR for every row
        "ideal_rus_auc": auc(y_rus, logistic_scores(ideal, rus_rows.x)),
        "ideal_rus_logloss": log_loss(y_rus, logistic_scores(ideal, rus_rows.x)),
        "fl_lr_rus_auc": auc(y_rus, logistic_scores(loop.last_model, rus_rows.x)),
        "fl_lr_rus_logloss": log_loss(y_rus, logistic_scores(loop.last_model, rus_rows.x)),
    }
    spec = _spec(config.loop.n_features)
    for variant, bypass in VARIANTS.items():
        report[variant] = []
        for lam in config.lambdas:
            runs = [train_variant(config, bypass, lam, seed, fl, rus, spec) for seed in range(config.initialisations)]
            row = {"lambda": lam} | {k: _summary([r[k] for r in runs]) for k in runs[0]}
            report[variant].append(row)
            logger.info("%s lambda=%g: RUS AUC %.4f, FL MSE on b %.6f", variant, lam, *_means(row))
    return report


def _means(row: dict[str, Any]) -> tuple[float, float]:
    return row["rus_auc"]["mean"], row["fl_b_mse"]["mean"]


def table(report: dict[str, Any]) -> list[str]:
    """The report as text lines: the loop's regime beside the paper's, then one line per variant and lambda."""
    lines = [
        f"last-day position-1 CTR   {report['last_day_position1_ctr']:.4f}   (paper 0.464)",
        f"naive MSE on b            {report['naive_b_mse']:.6f} (paper 0.00078)",
        f"ideal RUS AUC / logloss   {report['ideal_rus_auc']:.4f} / {report['ideal_rus_logloss']:.4f}",
        f"FL logistic reg. RUS AUC  {report['fl_lr_rus_auc']:.4f}",
        "",
        f"{'variant':<10} {'lambda':>8} {'FL AUC':>15} {'RUS AUC':>15} {'FL MSE b':>19} {'RUS MSE b':>19}",
    ]
    for variant in VARIANTS:
        for row in report[variant]:
            cells = [f"{row[k]['mean']:.4f}±{row[k]['std']:.4f}" for k in ("fl_auc", "rus_auc")]
            cells += [f"{row[k]['mean']:.6f}±{row[k]['std']:.6f}" for k in ("fl_b_mse", "rus_b_mse")]
            lines.append(
                f"{variant:<10} {row['lambda']:>8g} {cells[0]:>15} {cells[1]:>15} {cells[2]:>19} {cells[3]:>19}"
            )
    return lines


def plot(report: dict[str, Any], path: Path) -> None:
    """AUC and MSE on b against lambda (reverse log scale), FL and RUS, with and without bypass (Figure 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(15, 8))
    panels = [("fl_auc", "FL AUC"), ("rus_auc", "RUS AUC"), ("bypass_prediction_gap", "mean pCTR(b=p1) - pCTR(b=p2)")]
    panels += [("fl_b_mse", "FL MSE on b"), ("rus_b_mse", "RUS MSE on b"), ("rus_logloss", "RUS log loss")]
    for axis, (key, title) in zip(axes.ravel(), panels, strict=True):
        for variant in VARIANTS:
            rows = report[variant]
            x = [-np.log10(1.0 - row["lambda"]) for row in rows]  # 0 at lambda = 0, 5 at 0.99999
            axis.errorbar(
                x, [r[key]["mean"] for r in rows], yerr=[r[key]["std"] for r in rows], marker="o", label=variant
            )
        if key == "fl_b_mse":
            axis.axhline(report["naive_b_mse"], color="grey", linestyle="--", label="naive (mean CTR)")
        if key == "rus_auc":
            axis.axhline(report["ideal_rus_auc"], color="green", linestyle="--", label="LR on RUS")
            axis.axhline(report["fl_lr_rus_auc"], color="grey", linestyle=":", label="LR on FL")
        axis.set_xticks(x, [f"{row['lambda']:g}" for row in report["bypass"]])
        axis.set_xlabel("lambda (reverse log scale)")
        axis.set_title(title)
        axis.legend(fontsize=8)
    figure.suptitle(f"Moore et al. 2018 reproduction (r = {report['config']['loop']['r']})")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
