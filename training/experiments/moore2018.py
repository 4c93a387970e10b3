"""Reproduction of Moore et al. 2018, section 5: removing a feedback loop's position bias adversarially.

Runs the synthetic feedback loop (``feedback_loop.py``), then trains the adversarial network with and
without its bypass tower on the last two days of logs, b being the position CTR of each row's
position over those days, for each lambda of a reverse log scale and several initialisations, and
measures AUC on the feedback-loop (FL) data and on a held-out set drawn from D uniformly (RUS), and
the Bias network's MSE on b after its extra epochs. Beside each trained network it scores the same
network untrained and probes it (``moore2018_probes.py``), so that a flat curve can be told apart
from a network that never left its initial weights. Several loops (``loop_seeds``) and the
correlation penalty (``adversary_loss``) are options. Writes a JSON report, a PNG like the paper's
Figure 4, and returns the table rows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from common.features import Feature, FeatureSpec
from training.evaluation.metrics import auc, log_loss
from training.experiments.feedback_loop import (
    FeedbackLoopConfig,
    Rows,
    draw,
    fit_logistic,
    logistic_scores,
    simulate,
)
from training.experiments.moore2018_probes import (
    gradient_norms,
    linear_b_mse,
    rank_correlation,
    snapshot,
    weight_change,
)
from training.experiments.settings.moore2018 import Moore2018Config
from training.experiments.summary import STD_KIND, mean_std
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit
from training.fitting.settings import TrainingConfig
from training.models.adversarial_ctr import AdversarialCTR
from training.models.settings.adversarial_ctr import AdversarialCTRConfig
from training.position_ctr import position_ctr, position_ctr_per_row
from training.torch_threads import using_torch_threads

logger = logging.getLogger(__name__)

VARIANTS = {"bypass": True, "no_bypass": False}
PAPER = {"last_day_position1_ctr": 0.464, "naive_b_mse": 0.00078, "rus_auc_gain_0_to_0.9999": 0.126}


def loop_spec(n_features: int) -> FeatureSpec:
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


@dataclass
class LoopData:
    """One simulated feedback loop: the final models' training rows (FL), the held-out RUS rows, and
    the loop-level figures (its regime, the logistic-regression references, how collapsed it is)."""

    fl: dict[str, torch.Tensor]
    rus: dict[str, torch.Tensor]
    summary: dict[str, Any]


def prepare(config: FeedbackLoopConfig) -> LoopData:
    """Simulates the loop and builds the tensors every network of the sweep trains and is scored on."""
    loop = simulate(config)
    window = loop.window
    window_ctr = position_ctr(window.position, window.click)
    b = position_ctr_per_row(window.position, window.click)
    # standardised with the statistics of the whole candidate pool (the reservoir), which the ad system
    # knows; the shown rows' own statistics would put most of D tens of deviations away (docs/moore2018.md)
    mean, std = loop.reservoir_mean, loop.reservoir_std
    # RUS rows get a random position, and b = that position's CTR in the window: features cannot predict it
    rus_rows = loop.rus
    rus_position = np.random.default_rng(config.seed + 1).integers(1, 3, len(rus_rows))
    rus_b = np.array([window_ctr[p] for p in (1, 2)])[rus_position - 1]
    y_rus = rus_rows.y
    # the ideal: the same logistic regression on fresh RUS draws, as many as the held-out set (the
    # data exist) and, for scale, as many as the FL window
    rng = np.random.default_rng([config.seed, 2018])
    ideal = {size: fit_logistic((d := draw(rng, size, config)).x, d.y, config.l2) for size in (config.rus, len(window))}
    weights = loop.last_model[0]
    # how much of the position (hence b) the features carry at all: what the adversary could remove
    first = (window.position == 1).astype(np.int64)
    position_model = fit_logistic(window.x, first, config.l2)
    summary = {
        "seed": config.seed,
        "position_ctr_by_day": loop.position_ctr_by_day,
        "last_day_position1_ctr": loop.position_ctr_by_day[-1][0],
        "window_position_ctr": {str(p): c for p, c in window_ctr.items()},
        "naive_b_mse": float(np.mean((b - b.mean()) ** 2)),  # predicting the mean CTR for every row
        "ideal_rus_auc": auc(y_rus, logistic_scores(ideal[config.rus], rus_rows.x)),
        "ideal_rus_logloss": log_loss(y_rus, logistic_scores(ideal[config.rus], rus_rows.x)),
        "ideal_window_size_rus_auc": auc(y_rus, logistic_scores(ideal[len(window)], rus_rows.x)),
        "bayes_rus_auc": auc(y_rus, rus_rows.x.sum(axis=1)),  # the true log-odds rank by the sum of x
        "fl_lr_rus_auc": auc(y_rus, logistic_scores(loop.last_model, rus_rows.x)),
        "fl_lr_rus_logloss": log_loss(y_rus, logistic_scores(loop.last_model, rus_rows.x)),
        "fl_lr_weights": weights.tolist(),
        # 1 / d for equal weights, 1 when the loop ranks by one feature alone
        "fl_lr_largest_weight_share": float(np.abs(weights).max() / np.abs(weights).sum()),
        "position_auc_from_features": auc(first, logistic_scores(position_model, window.x)),  # in-sample
        "linear_b_mse_on_features": linear_b_mse(window.x, b),
        "window_feature_mean": window.x.mean(axis=0).tolist(),
        "window_feature_std": window.x.std(axis=0).tolist(),
    }
    fl = _tensors(window, mean, std, b)
    rus = _tensors(Rows(rus_rows.x, y_rus, rus_position, y_rus), mean, std, rus_b)
    return LoopData(fl, rus, summary)


def build(config: Moore2018Config, bypass: bool, lam: float, seed: int, spec: FeatureSpec) -> AdversarialCTR:
    torch.manual_seed(seed)
    model_config = AdversarialCTRConfig(
        lam=lam, bypass=bypass, bias_epochs=config.bias_epochs, adversary_loss=config.adversary_loss
    )
    return AdversarialCTR(spec, model_config)


def training_config(config: Moore2018Config, seed: int, learning_rate: float | None = None) -> TrainingConfig:
    return TrainingConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=learning_rate or config.learning_rate,
        seed=seed,
        validation_fraction=0.0,
    )


def train_variant(
    config: Moore2018Config, bypass: bool, lam: float, seed: int, data: LoopData, spec: FeatureSpec
) -> dict[str, float]:
    """One initialisation of one model: its AUCs, the Bias network's MSEs, the bypass's prediction gap,
    and the probes (the untrained network's RUS AUC, distance from the initial weights, gradients)."""
    fl, rus = data.fl, data.rus
    model = build(config, bypass, lam, seed, spec)
    model.fix_constants(fl)  # as fit does; the untrained network is scored with the same constants
    initial = snapshot(model)
    with torch.no_grad():
        untrained = model(rus["categorical"], rus["numeric"])["pctr"].numpy()
    fit(model, ImpressionTensors(fl), training_config(config, seed), progress=False)
    model.eval()
    with torch.no_grad():
        fl_pred = model.predict_at(fl["categorical"], fl["numeric"], fl["b"]).numpy()  # each row's own b
        rus_pred = model(rus["categorical"], rus["numeric"])["pctr"].numpy()  # b fixed to the position-1 CTR
        ctr = sorted(set(fl["b"].tolist()), reverse=True)
        at = [model.predict_at(fl["categorical"], fl["numeric"], torch.full_like(fl["b"], c)).mean() for c in ctr]
    # after the Bias-only epochs the adversary is at its strongest: its gradient is an upper bound
    gradients = gradient_norms(model, fl, config.batch_size)
    with torch.no_grad():
        z_a = model.base(fl["categorical"], fl["numeric"]).numpy()
    return {
        "fl_auc": auc(fl["click"].numpy(), fl_pred),
        "rus_auc": auc(rus["click"].numpy(), rus_pred),
        "rus_logloss": log_loss(rus["click"].numpy(), rus_pred),
        "fl_b_mse": model.bias_mse(fl["categorical"], fl["numeric"], fl["b"]),
        "rus_b_mse": model.bias_mse(rus["categorical"], rus["numeric"], rus["b"]),
        "fl_b_mse_linear_on_z_a": linear_b_mse(z_a, fl["b"].numpy()),  # the best linear adversary on Z_A
        "bypass_prediction_gap": float(at[0] - at[-1]),  # mean pCTR at b = p1 minus at b = p2 (Figure 4e)
        "untrained_rus_auc": auc(rus["click"].numpy(), untrained),
        "rank_corr_with_untrained": rank_correlation(rus_pred, untrained),
        "weight_change": weight_change(model, initial),
        **gradients,
        # lambda |grad penalty| / ((1 - lambda) |grad BCE|) on theta_A: how much of the step the adversary is
        "adversary_share": lam * gradients["grad_adversary"] / ((1 - lam) * gradients["grad_click"]),
    }


def run(config: Moore2018Config) -> dict[str, Any]:
    """The whole experiment over ``loop_seeds`` loops; returns the JSON report."""
    spec = loop_spec(config.loop.n_features)
    runs: dict[tuple[str, float], list[dict[str, float]]] = {}
    loops = []
    with using_torch_threads(1):  # tiny networks: threads only add overhead
        for loop_seed in range(config.loop.seed, config.loop.seed + config.loop_seeds):
            data = prepare(replace(config.loop, seed=loop_seed))
            loops.append(data.summary)
            for variant, bypass in VARIANTS.items():
                for lam in config.lambdas:
                    runs.setdefault((variant, lam), []).extend(
                        train_variant(config, bypass, lam, seed, data, spec) for seed in range(config.initialisations)
                    )
    config_dict = {**asdict(config), "loop": asdict(config.loop)}
    report: dict[str, Any] = {"config": config_dict, "std_kind": STD_KIND, "paper": PAPER, "loops": loops}
    # the loop-level figures, as means over the loops (equal to the loop's own with one loop)
    for key in LOOP_FIGURES:
        report[key] = float(np.mean([loop[key] for loop in loops]))
    report["position_ctr_by_day"] = loops[0]["position_ctr_by_day"]
    report["untrained"] = {}
    per_loop = config.initialisations
    for variant in VARIANTS:
        report[variant] = []
        for lam in config.lambdas:
            results = runs[(variant, lam)]
            # mean and std over the loop_seeds x initialisations runs
            row = {"lambda": lam} | {k: mean_std([r[k] for r in results]) for k in results[0]}
            by_loop = [results[i : i + per_loop] for i in range(0, len(results), per_loop)]
            row["rus_auc_by_loop"] = [float(np.mean([r["rus_auc"] for r in part])) for part in by_loop]
            report[variant].append(row)
            logger.info("%s lambda=%g: RUS AUC %.4f, FL MSE on b %.6f", variant, lam, *_means(row))
        # the untrained networks: the same initialisations (and constants) as every lambda's
        report["untrained"][variant] = report[variant][0]["untrained_rus_auc"]
    return report


LOOP_FIGURES = (
    "last_day_position1_ctr",
    "naive_b_mse",
    "ideal_rus_auc",
    "ideal_rus_logloss",
    "ideal_window_size_rus_auc",
    "bayes_rus_auc",
    "fl_lr_rus_auc",
    "fl_lr_rus_logloss",
    "fl_lr_largest_weight_share",
)


def _means(row: dict[str, Any]) -> tuple[float, float]:
    return row["rus_auc"]["mean"], row["fl_b_mse"]["mean"]
