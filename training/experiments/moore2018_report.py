"""The Moore et al. 2018 report as text and as a picture like the paper's Figure 4 (plus the probes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.plural import counted
from training.experiments.moore2018 import VARIANTS
from training.experiments.summary import plus_minus
from training.figure_file import save_figure

# quantities that cannot be negative: their mean - std bars, which ran below 0 for an MSE, stop at 0
NONNEGATIVE = ("weight_change", "fl_b_mse", "rus_b_mse", "rus_logloss")
# with and without bypass drawn at the same lambda, one variant's error bars hid the other's: each is shifted
OFFSET = 0.08


def table(report: dict[str, Any]) -> list[str]:
    """The report as text lines: the loop's regime beside the paper's, then one line per variant and lambda."""
    loops = len(report["loops"])
    shares = ", ".join(f"{loop['fl_lr_largest_weight_share']:.2f}" for loop in report["loops"])
    lines = [
        f"feedback loops            {loops} (seeds {report['loops'][0]['seed']}..{report['loops'][-1]['seed']}); "
        f"penalty {report['config']['adversary_loss']}",
        f"last-day position-1 CTR   {report['last_day_position1_ctr']:.4f}   (paper 0.464)",
        f"naive MSE on b            {report['naive_b_mse']:.6f} (paper 0.00078)",
        f"ideal RUS AUC / logloss   {report['ideal_rus_auc']:.4f} / {report['ideal_rus_logloss']:.4f} "
        f"(LR on {report['config']['loop']['rus']} RUS rows; on as many as the FL window: "
        f"{report['ideal_window_size_rus_auc']:.4f}; Bayes {report['bayes_rus_auc']:.4f})",
        f"FL logistic reg. RUS AUC  {report['fl_lr_rus_auc']:.4f} (largest weight's share per loop: {shares})",
        "untrained nets RUS AUC    "
        + ", ".join(f"{v} {plus_minus(s, 4, '±')}" for v, s in report["untrained"].items()),
        "",
        f"{'variant':<10} {'lambda':>8} {'FL AUC':>15} {'RUS AUC':>15} {'FL MSE b':>19} "
        f"{'moved':>6} {'rank~init':>9} {'adv/click':>9}",
    ]
    for variant in VARIANTS:
        for row in report[variant]:
            cells = [plus_minus(row[k], 4, "±") for k in ("fl_auc", "rus_auc")]
            cells.append(plus_minus(row["fl_b_mse"], 6, "±"))
            cells += [f"{row['weight_change']['mean']:.3f}", f"{row['rank_corr_with_untrained']['mean']:.3f}"]
            cells.append(f"{row['adversary_share']['mean']:.1e}")
            lines.append(
                f"{variant:<10} {row['lambda']:>8g} {cells[0]:>15} {cells[1]:>15} {cells[2]:>19} "
                f"{cells[3]:>6} {cells[4]:>9} {cells[5]:>9}"
            )
    return lines


def plot(report: dict[str, Any], path: Path) -> None:
    """AUC and MSE on b against lambda (reverse log scale), FL and RUS, with and without bypass (Figure 4),
    with the probes: distance from the initial weights and the adversary's share of the Base gradient."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 4, figsize=(20, 8))
    panels = [("fl_auc", "FL AUC"), ("rus_auc", "RUS AUC"), ("bypass_prediction_gap", "mean pCTR(b=p1) - pCTR(b=p2)")]
    panels += [("weight_change", "|theta - theta_0| / |theta_0| (feature path)"), ("fl_b_mse", "FL MSE on b")]
    panels += [("rus_b_mse", "RUS MSE on b"), ("rus_logloss", "RUS log loss")]
    panels += [("adversary_share", "lambda |grad adv| / ((1-lambda) |grad BCE|) on Base")]
    lambdas = [row["lambda"] for row in report["bypass"]]
    x = list(range(len(lambdas)))  # evenly spaced: the paper's reverse log scale for its grid
    for axis, (key, title) in zip(axes.ravel(), panels, strict=True):
        clipped = False
        for index, variant in enumerate(VARIANTS):
            rows = report[variant]
            means = [r[key]["mean"] for r in rows]
            stds = [r[key]["std"] or 0.0 for r in rows]  # one run: no spread (None)
            shifted = [xi + (index - (len(VARIANTS) - 1) / 2) * OFFSET for xi in x]
            if key == "adversary_share":  # a ratio over decades: means on a log scale (0 at lambda = 0 left out)
                shown = [(xi, m) for xi, m in zip(x, means, strict=True) if m > 0]
                axis.plot([xi for xi, _ in shown], [m for _, m in shown], marker="o", label=variant)
                axis.set_yscale("log")
                continue
            below = stds
            if key in NONNEGATIVE:
                below = [min(s, m) for m, s in zip(means, stds, strict=True)]
                clipped = clipped or below != stds
            bars = axis.errorbar(shifted, means, yerr=[below, stds], marker="o", capsize=2, label=variant)
            if key == "rus_auc":
                untrained = report["untrained"][variant]["mean"]
                colour = bars.lines[0].get_color()
                axis.axhline(untrained, color=colour, linestyle="-.", label=f"untrained {variant}")
        if key == "fl_b_mse":
            axis.axhline(report["naive_b_mse"], color="grey", linestyle="--", label="naive (mean CTR)")
        if key == "rus_auc":
            axis.axhline(report["ideal_rus_auc"], color="green", linestyle="--", label="LR on RUS")
            axis.axhline(report["fl_lr_rus_auc"], color="grey", linestyle=":", label="LR on FL")
        axis.set_xticks(x, [f"{lam:g}" for lam in lambdas])
        axis.set_xlabel("λ (categories, evenly spaced: not to scale)")
        axis.set_title(title + ("\nmean ± std, clipped at 0" if clipped else ""), fontsize=10)
        axis.legend(fontsize=7)
    config = report["config"]
    figure.suptitle(
        f"Moore et al. 2018 reproduction (r = {config['loop']['r']}, penalty {config['adversary_loss']}, "
        f"{counted(len(report['loops']), 'loop')} x {counted(config['initialisations'], 'initialisation')})"
    )
    figure.tight_layout()
    save_figure(figure, path, dpi=100)
    plt.close(figure)
