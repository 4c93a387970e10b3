"""The auction picture: welfare and revenue per day per pipeline, and pCTR calibration per slot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_report(report: dict[str, Any], path: Path) -> Path:
    """Three panels: welfare per day, revenue per day (means over seeds), pCTR / true per slot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pipelines = report["pipelines"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for key, ax in zip(("welfare", "revenue"), axes[:2], strict=True):
        for name, entry in pipelines.items():
            days = [d["day"] for d in entry["days"]]
            ax.plot(days, [d[key] for d in entry["days"]], marker="o", label=name)
        ax.set(xlabel="day", ylabel=f"{key} per day (mean over seeds)", title=key)
        ax.legend()
    ax = axes[2]
    names = list(pipelines)
    n_slots = report["config"]["slots"]
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        total = pipelines[name]["total"]
        values = np.asarray(total["pctr_over_true_by_slot"], dtype=np.float64)
        intervals = [  # a slot without an interval (one seed) gets no error bar
            interval if interval is not None else [v, v]
            for v, interval in zip(values, total["pctr_over_true_by_slot_ci95"], strict=True)
        ]
        lows, highs = np.asarray(intervals, dtype=np.float64).T
        x = np.arange(1, n_slots + 1) + (i - (len(names) - 1) / 2) * width
        ax.bar(x, values, width, yerr=[values - lows, highs - values], label=name, capsize=3)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xlabel="slot", ylabel="mean top-slot pCTR / true top-slot CTR", title="pCTR calibration per slot")
    ax.set_xticks(np.arange(1, n_slots + 1))
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
