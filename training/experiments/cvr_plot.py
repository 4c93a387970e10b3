"""The picture of ``ctr experiment cvr``: pCVR calibration curves (seed 0) and entire-space CVR AUC bars.

Each method keeps one colour, marker and line style, the same in every CVR figure: with matplotlib's
ten-colour cycle, one marker and one line for the 16 methods, six colours repeated and the curves could
not be told apart. Methods are drawn in the experiment's own order whatever the order of the report's
keys: the JSON is written with sorted keys, so a figure redrawn from it listed the methods
alphabetically and gave them other colours than the figure drawn beside it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.experiments.settings.cvr import ABLATIONS, METHODS
from training.figure_file import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHANCE_AUC = 50.0  # the bars start here: an AUC of 50% ranks no better than a coin
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", ":")


def method_order(report: dict[str, Any]) -> list[str]:
    """The report's methods in the order the experiment ran them (its config's ``methods``, then the
    order of METHODS and ABLATIONS), any label neither knows last, in the report's order."""
    known = [*report.get("config", {}).get("methods", []), *METHODS, *ABLATIONS]
    drawn = report["methods"]
    ordered = [label for label in dict.fromkeys(known) if label in drawn]
    return ordered + [label for label in drawn if label not in ordered]


def method_style(label: str) -> dict[str, Any]:
    """Colour (tab20: one per known method), marker and line style of ``label``, fixed by its place in
    METHODS and ABLATIONS so that a method looks the same in every figure."""
    import matplotlib

    known = list(dict.fromkeys([*METHODS, *ABLATIONS]))
    index = known.index(label) if label in known else len(known) + sum(map(ord, label))
    return {
        "color": matplotlib.colormaps["tab20"](index % 20),
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": LINESTYLES[index // len(MARKERS) % len(LINESTYLES)],
    }


def cvr_figure(report: dict[str, Any]) -> Figure:
    """The two panels, the methods' legend below them, outside both axes (inside, it hid the rightmost
    curve and the ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = method_order(report)
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 7.5), layout="constrained")
    curves = report["calibration_curves_seed0"]
    top = 0.0
    for label in labels:
        if label not in curves:
            continue
        curve = curves[label]
        left.plot(curve["predicted"], curve["true"], markersize=4, label=label, **method_style(label))
        top = max(top, *curve["predicted"], *curve["true"])
    top = min(1.0, top * 1.05) if math.isfinite(top) and top > 0 else 1.0
    left.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    left.set(xlim=(0, top), ylim=(0, top), xlabel="mean predicted CVR (bin)", ylabel="mean true CVR (bin)")
    left.set_title("pCVR calibration over the entire space (seed 0)")

    means = [100 * report["methods"][m]["cvr_auc_entire_space"]["mean"] for m in labels]
    stds = [100 * (report["methods"][m]["cvr_auc_entire_space"]["std"] or 0.0) for m in labels]  # one seed: none
    x = range(len(labels))
    # bars rise from chance, not from the axis' lower end: started near 55%, a bar twice as tall as
    # another stood for a few AUC points, not for twice the ranking skill
    right.bar(
        x,
        [m - CHANCE_AUC for m in means],
        bottom=CHANCE_AUC,
        yerr=stds if any(stds) else None,
        capsize=3,
        color=[method_style(m)["color"] for m in labels],
        edgecolor="black",
        linewidth=0.5,
    )
    highest = max(m + s for m, s in zip(means, stds, strict=True))
    right.set_ylim(min(CHANCE_AUC, *means), highest + 0.05 * (highest - CHANCE_AUC) + 0.5)
    right.set_xticks(x, labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    right.set_ylabel("CVR AUC, entire space (%); the axis starts at 50, chance")
    seeds = report["config"]["seeds"]
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed: no spread"
    right.set_title(f"entire-space CVR AUC, {spread}")
    figure.legend(loc="outside lower center", ncol=4, fontsize=8)
    return figure


def plot(report: dict[str, Any], path: Path) -> None:
    """Write the figure of ``report`` to ``path`` (a PNG)."""
    import matplotlib.pyplot as plt

    figure = cvr_figure(report)
    save_figure(figure, path, dpi=110)
    plt.close(figure)
