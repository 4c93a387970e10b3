"""The Moore et al. 2018 figure (training/experiments/moore2018_report.py): error bars of the two variants
side by side, not stacked; a non-negative quantity's mean - std stopped at 0; lambda said to be categorical."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from training.experiments import moore2018_report

KEYS = ("fl_auc", "rus_auc", "bypass_prediction_gap", "weight_change", "fl_b_mse", "rus_b_mse", "rus_logloss",
        "adversary_share")  # fmt: skip


def report() -> dict:
    row = {key: {"mean": 0.5, "std": 0.1} for key in KEYS} | {"rus_b_mse": {"mean": 0.2, "std": 0.3}}
    rows = [row | {"lambda": lam} for lam in (0.0, 0.9, 0.99)]
    return {
        "bypass": rows,
        "no_bypass": rows,
        "untrained": {"bypass": {"mean": 0.5}, "no_bypass": {"mean": 0.5}},
        "naive_b_mse": 0.2,
        "ideal_rus_auc": 0.6,
        "fl_lr_rus_auc": 0.55,
        "loops": [{}],
        "config": {"loop": {"r": 0.0}, "adversary_loss": "covariance", "initialisations": 2},
    }


def test_bars_side_by_side_clipped_at_zero_and_lambda_categorical(tmp_path, monkeypatch) -> None:
    drawn = {}
    monkeypatch.setattr(moore2018_report, "save_figure", lambda figure, path, dpi: drawn.setdefault("figure", figure))
    moore2018_report.plot(report(), tmp_path / "moore2018.png")
    axes = drawn["figure"].axes
    mse = next(axis for axis in axes if axis.get_title().startswith("RUS MSE on b"))
    assert "clipped at 0" in mse.get_title()
    lowest = min(np.asarray(segment)[:, 1].min() for c in mse.collections for segment in c.get_segments())
    assert lowest == 0.0
    xs = [tuple(bars.lines[0].get_xdata()) for bars in mse.containers]  # one errorbar per variant
    assert len(xs) == 2 and all(a != b for a, b in zip(*xs, strict=True))
    assert all("not to scale" in axis.get_xlabel() for axis in axes)
    plt.close(drawn["figure"])
