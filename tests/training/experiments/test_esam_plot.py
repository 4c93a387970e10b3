"""The ESAM figure's legend (training/experiments/esam_plot.py): it said "displayed (1601)" beside the
1,500 points drawn of them."""

from __future__ import annotations

import numpy as np

from training.experiments.esam_plot import domain_label


def test_the_legend_says_how_many_items_are_drawn_of_how_many() -> None:
    never = np.arange(5_000) < 3_399
    assert domain_label("never displayed", never, np.arange(1_500)) == "never displayed (3,399; 1,500 drawn at random)"
    assert domain_label("displayed", ~never, np.arange(1_601)) == "displayed (all 1,601 drawn)"
