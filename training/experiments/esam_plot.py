"""The ESAM picture: a 2-D projection of displayed vs non-displayed item embeddings, baseline vs ESAM.

Each panel projects one model's catalog embeddings on their first two principal components (an SVD
of the centred embeddings), displayed items in one colour, never-displayed items in another. A
baseline trained on displayed items alone leaves the never-displayed ones where they fell; ESAM's
alignment should spread both domains over the same region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.figure_file import save_figure

POINTS = 1500  # at most this many items of each domain per panel, drawn at random


def principal_components(x: np.ndarray, n: int = 2) -> np.ndarray:
    """(N, n) projection of ``x`` (N, L) on its first ``n`` principal components."""
    centred = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:n].T


def domain_label(name: str, mask: np.ndarray, drawn: np.ndarray) -> str:
    """The legend entry of one domain: how many items it holds and how many of them are drawn (the legend
    said "displayed (1601)" beside 1,500 points, as if every item were there)."""
    total = int(mask.sum())
    shown = f"all {total:,} drawn" if drawn.size == total else f"{total:,}; {drawn.size:,} drawn at random"
    return f"{name} ({shown})"


def plot_projection(
    embeddings: dict[str, np.ndarray], path: Path, panels: tuple[str, ...] = ("baseline", "ESAM")
) -> Path:
    """Write the PNG; ``embeddings`` holds (A, L) per variant and "displayed" (A,) bool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    displayed = embeddings["displayed"]
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.5))
    for ax, name in zip(np.atleast_1d(axes), panels, strict=True):
        points = principal_components(embeddings[name])
        for mask, label, colour in (
            (~displayed, "never displayed", "tab:orange"),
            (displayed, "displayed", "tab:blue"),
        ):
            index = np.flatnonzero(mask)
            index = rng.choice(index, min(POINTS, index.size), replace=False)
            ax.scatter(
                points[index, 0], points[index, 1], s=4, alpha=0.5, c=colour, label=domain_label(label, mask, index)
            )
        ax.set_title(f"{name}: item embeddings, first two principal components")
        ax.legend(markerscale=4, loc="best")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
