"""Checks of the explanation of the Moore et al. 2018 reproduction (docs/moore2018.md), each able to fail.

1. Does the feedback loop collapse onto one feature? For several loop seeds: the last logistic
   regression's weights and the share of the largest, the shown rows' feature spread, and how the
   loop's own model and the ideal one rank D.
2. Is lambda only a smaller learning rate? For each (penalty, lambda) case and initialisation, the
   network trained on Loss_N at lr is compared with the same initialisation trained on the click loss
   alone (lambda = 0) at lr (1 - lambda), over the same minibatches: if the adversary's term is
   negligible the two end at the same weights and the same RUS predictions.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.evaluation.metrics import auc
from training.experiments.moore2018 import (
    VARIANTS,
    LoopData,
    build,
    loop_spec,
    prepare,
    training_config,
)
from training.experiments.moore2018_probes import feature_path, rank_correlation, snapshot
from training.experiments.settings.moore2018 import Moore2018Config
from training.experiments.summary import STD_KIND, mean_std
from training.figure_file import save_figure
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit
from training.torch_threads import using_torch_threads

logger = logging.getLogger(__name__)

# (penalty, lambda): the paper's covariance at three lambdas, and the correlation penalty as a control
# whose term is not negligible (its runs should differ from the scaled-learning-rate ones)
CASES = (("covariance", 0.9), ("covariance", 0.99), ("covariance", 0.999), ("correlation", 0.5))
COLLAPSED_SHARE = 0.9  # a loop "collapsed" when one feature holds this share of the weights' |w|


def _distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(np.sqrt(sum(float(((x - y) ** 2).sum()) for x, y in zip(a, b, strict=True))))


def _rus_pctr(model: torch.nn.Module, data: LoopData) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(data.rus["categorical"], data.rus["numeric"])["pctr"].numpy()


def learning_rate_equivalence(
    config: Moore2018Config, data: LoopData, initialisations: int, cases: tuple[tuple[str, float], ...] = CASES
) -> list[dict[str, Any]]:
    """One row per (penalty, lambda, variant), averaged over ``initialisations``."""
    spec = loop_spec(data.fl["numeric"].shape[1])
    config = replace(config, bias_epochs=0)  # the Bias-only epochs change no prediction
    rows = []
    for penalty, lam in cases:
        case = replace(config, adversary_loss=penalty)
        for variant, bypass in VARIANTS.items():
            runs = []
            for seed in range(initialisations):
                adversarial = build(case, bypass, lam, seed, spec)
                initial = snapshot(adversarial)
                fit(adversarial, ImpressionTensors(data.fl), training_config(case, seed), progress=False)
                scaled = build(case, bypass, 0.0, seed, spec)
                slower = training_config(case, seed, learning_rate=case.learning_rate * (1.0 - lam))
                fit(scaled, ImpressionTensors(data.fl), slower, progress=False)
                pa, ps = _rus_pctr(adversarial, data), _rus_pctr(scaled, data)
                final = snapshot(adversarial)
                click = data.rus["click"].numpy()
                runs.append(
                    {
                        "rus_auc_lambda": auc(click, pa),
                        "rus_auc_scaled_lr": auc(click, ps),
                        "max_abs_pctr_difference": float(np.max(np.abs(pa - ps))),
                        "rank_correlation": rank_correlation(pa, ps),
                        # how far apart the two ends are, per unit of the distance the lambda run moved
                        "weight_gap_over_movement": _distance(final, [p.detach() for p in feature_path(scaled)])
                        / max(_distance(final, initial), 1e-12),
                    }
                )
            row = {"penalty": penalty, "lambda": lam, "variant": variant}
            rows.append(row | {k: float(np.mean([r[k] for r in runs])) for k in runs[0]})
            logger.info("%s lambda=%g %s: %s", penalty, lam, variant, rows[-1])
    return rows


def run_checks(config: Moore2018Config, initialisations: int = 2) -> dict[str, Any]:
    """Both checks over ``config.loop_seeds`` loops (the equivalence check on the first loop)."""
    with using_torch_threads(1):  # tiny networks, as moore2018.run's
        first = prepare(config.loop)
        loops = [first.summary] + [
            prepare(replace(config.loop, seed=seed)).summary
            for seed in range(config.loop.seed + 1, config.loop.seed + config.loop_seeds)
        ]
        equivalence = learning_rate_equivalence(config, first, initialisations)
    loops = [{k: v for k, v in loop.items() if k != "position_ctr_by_day"} for loop in loops]
    shares = [loop["fl_lr_largest_weight_share"] for loop in loops]
    return {
        "config": {**asdict(config), "loop": asdict(config.loop), "initialisations": initialisations},
        "std_kind": STD_KIND,
        "loops": loops,
        "collapse": {
            "threshold": COLLAPSED_SHARE,
            "collapsed_loops": int(sum(s >= COLLAPSED_SHARE for s in shares)),
            "loops": len(shares),
            "largest_weight_share": _stats(shares),
            "fl_lr_rus_auc": _stats([loop["fl_lr_rus_auc"] for loop in loops]),
            "ideal_rus_auc": _stats([loop["ideal_rus_auc"] for loop in loops]),
            "ideal_window_size_rus_auc": _stats([loop["ideal_window_size_rus_auc"] for loop in loops]),
        },
        "learning_rate_equivalence": equivalence,
    }


def _stats(values: list[float]) -> dict[str, float | None]:
    """Mean and std over the loops (``summary.mean_std``), and the extremes."""
    return {**mean_std(values), "min": min(values), "max": max(values)}


def checks_table(report: dict[str, Any]) -> list[str]:
    collapse = report["collapse"]
    lines = [f"{'loop seed':>9} {'LR weights':>18} {'share':>6} {'shown x std':>14} {'FL LR AUC':>9} {'ideal AUC':>9}"]
    for loop in report["loops"]:
        weights = ", ".join(f"{w:.2f}" for w in loop["fl_lr_weights"])
        spread = ", ".join(f"{s:.2f}" for s in loop["window_feature_std"])
        lines.append(
            f"{loop['seed']:>9} {weights:>18} {loop['fl_lr_largest_weight_share']:>6.2f} {spread:>14} "
            f"{loop['fl_lr_rus_auc']:>9.4f} {loop['ideal_rus_auc']:>9.4f}"
        )
    lines += [
        f"collapsed (largest share >= {collapse['threshold']}): {collapse['collapsed_loops']} of {collapse['loops']}",
        "",
        f"{'penalty':<12} {'lambda':>6} {'variant':<10} {'AUC lambda':>10} {'AUC lr(1-l)':>11} "
        f"{'max|dp|':>9} {'rank corr':>9} {'gap/moved':>9}",
    ]
    for row in report["learning_rate_equivalence"]:
        lines.append(
            f"{row['penalty']:<12} {row['lambda']:>6g} {row['variant']:<10} {row['rus_auc_lambda']:>10.4f} "
            f"{row['rus_auc_scaled_lr']:>11.4f} {row['max_abs_pctr_difference']:>9.2e} "
            f"{row['rank_correlation']:>9.6f} {row['weight_gap_over_movement']:>9.2e}"
        )
    return lines


def plot_checks(report: dict[str, Any], path: Path) -> None:
    """Left: the share of each loop's last logistic regression held by its largest weight. Right: RUS AUC
    of the lambda runs against the same initialisations trained on the click loss alone at lr (1 - lambda)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    seeds = [loop["seed"] for loop in report["loops"]]
    left.bar([str(seed) for seed in seeds], [loop["fl_lr_largest_weight_share"] for loop in report["loops"]])
    left.axhline(report["collapse"]["threshold"], color="red", linestyle="--", label="collapsed above")
    left.axhline(1.0 / len(report["loops"][0]["fl_lr_weights"]), color="grey", linestyle=":", label="equal weights")
    left.set_ylim(0.0, 1.05)
    left.set_xlabel("loop seed")
    left.set_ylabel("largest |w_j| / sum |w|")
    left.set_title("the loop's last logistic regression: ranked by one feature?")
    left.legend(fontsize=7)
    for row in report["learning_rate_equivalence"]:
        label = f"{row['penalty']} {row['lambda']:g} {row['variant']}"
        right.scatter(row["rus_auc_scaled_lr"], row["rus_auc_lambda"], label=label)
    low, high = right.get_xlim()
    right.plot([low, high], [low, high], color="grey", linestyle="--")
    right.set_xlabel("RUS AUC, click loss alone at lr (1 - lambda)")
    right.set_ylabel("RUS AUC, Loss_N at lr")
    right.set_title("is lambda only a smaller learning rate?")
    right.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path, dpi=100)
    plt.close(figure)
