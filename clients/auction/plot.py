"""The auction picture: welfare and revenue per day per pipeline, and pCTR calibration per slot.

What it claimed and did not show before: with one seed, zero-length error bars with caps were drawn
(the report held [v, v] as the interval of one value) under labels saying "mean over seeds"; the lines
of the means carried no interval, so the conclusion beside them ("no difference the seeds can tell
apart") looked contradicted. Now the number of seeds is said, a shaded band is the 95% interval of the
mean over the seeds on each day (Student t, as the report's totals; none from one seed), and a bar gets
an error bar only where the report holds an interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clients.auction.explore import EXPLORING
from clients.auction.report import ci95
from training.figure_file import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# one look per pipeline, told apart in grayscale too: marker, line style and bar hatch besides the colour
STYLES = (
    {"marker": "o", "linestyle": "-", "hatch": ""},
    {"marker": "s", "linestyle": "--", "hatch": "//"},
    {"marker": "^", "linestyle": ":", "hatch": ".."},
    {"marker": "D", "linestyle": "-.", "hatch": "xx"},
    {"marker": "v", "linestyle": (0, (5, 2, 1, 2, 1, 2)), "hatch": "\\\\"},
)


def seed_count(report: dict[str, Any]) -> int:
    """Seeds the report's means are over (the smallest count among its pipelines)."""
    return min(len(entry["seeds"]) or entry["total"]["seeds"] for entry in report["pipelines"].values())


def interval(bounds: list[float] | None) -> tuple[float, float] | None:
    """An interval with a width, or None: reports written before ``ci95`` returned None for one seed hold
    [v, v] there, which is no interval either."""
    if bounds is None or bounds[0] == bounds[1]:
        return None
    return bounds[0], bounds[1]


def daily_intervals(entry: dict[str, Any], key: str) -> list[tuple[float, float] | None]:
    """Per day of ``entry["days"]``, the 95% interval of the mean of ``key`` over the seeds that ran it."""
    out = []
    for day in range(len(entry["days"])):
        values = [seed["days"][day][key] for seed in entry["seeds"] if day < len(seed["days"])]
        out.append(interval(ci95(values)))
    return out


def auction_figure(report: dict[str, Any]) -> Figure:
    """Three panels: welfare per day, revenue per day (means over seeds, shaded 95% intervals), and
    pCTR / true per slot with its 95% interval; one legend for all, below them (inside, it covered bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.ticker import MaxNLocator

    pipelines = report["pipelines"]
    seeds = seed_count(report)
    over = f"mean over {seeds} seeds" if seeds > 1 else "one seed"
    figure, axes = plt.subplots(1, 3, figsize=(16, 5), layout="constrained")
    for key, axis in zip(("welfare", "revenue"), axes[:2], strict=True):
        for (name, entry), style in zip(pipelines.items(), STYLES, strict=False):
            days = [d["day"] for d in entry["days"]]
            (line,) = axis.plot(
                days, [d[key] for d in entry["days"]], marker=style["marker"], linestyle=style["linestyle"], label=name
            )
            bands = daily_intervals(entry, key)
            if any(band is not None for band in bands):
                low, high = (np.array([np.nan if b is None else b[i] for b in bands]) for i in (0, 1))
                axis.fill_between(days, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        shaded = "shaded: 95% interval of the mean (Student t)" if seeds > 1 else "one seed: no interval"
        axis.set(xlabel="day", ylabel=f"{key} per day ({over})", title=f"{key} per day\n{shaded}")
    axis = axes[2]
    names = list(pipelines)
    n_slots = report["config"]["slots"]
    width = 0.8 / max(len(names), 1)
    lines, handles = axes[0].get_lines(), []
    for i, (name, style) in enumerate(zip(names, STYLES, strict=False)):
        total = pipelines[name]["total"]
        values = np.asarray(total["pctr_over_true_by_slot"], dtype=np.float64)
        x = np.arange(1, n_slots + 1) + (i - (len(names) - 1) / 2) * width
        bars = axis.bar(x, values, width, hatch=style["hatch"], edgecolor="black", linewidth=0.5)
        handles.append((lines[i], bars[0]))
        intervals = [interval(bounds) for bounds in total["pctr_over_true_by_slot_ci95"]]
        shown = [j for j, bounds in enumerate(intervals) if bounds is not None]
        if shown:  # a slot without an interval (one seed) gets no error bar, not one of length zero
            lows = np.array([intervals[j][0] for j in shown])
            highs = np.array([intervals[j][1] for j in shown])
            axis.errorbar(x[shown], values[shown], yerr=[values[shown] - lows, highs - values[shown]],
                          fmt="none", ecolor="black", capsize=3)  # fmt: skip
    axis.axhline(1.0, color="black", linewidth=0.8)
    bars_say = "error bars: 95% interval of the mean" if seeds > 1 else "one seed: no interval"
    axis.set(xlabel="slot", ylabel=f"mean top-slot pCTR / true top-slot CTR ({over})")
    axis.set_title(f"pCTR calibration per slot\n{bars_say}")
    axis.set_xticks(np.arange(1, n_slots + 1))
    share = report["config"].get("explore")  # an exploration slice: its pipelines' days and slots include it
    labels = [f"{name} ({share:.0%} explored)" if share and name in EXPLORING else name for name in names]
    figure.legend(handles, labels, handler_map={tuple: HandlerTuple(ndivide=None)}, loc="outside lower center",
                  ncol=len(names), handlelength=5)  # fmt: skip
    if "partial" in report:  # the JSON says so; a figure of fewer days or seeds looked like a finished run
        figure.suptitle(f"partial: interrupted by {report['partial']['interrupted_by']}, the days that ended only")
    return figure


def plot_report(report: dict[str, Any], path: Path) -> Path:
    """Write the figure of ``report`` to ``path`` (a PNG)."""
    import matplotlib.pyplot as plt

    figure = auction_figure(report)
    save_figure(figure, path, dpi=110)
    plt.close(figure)
    return path
