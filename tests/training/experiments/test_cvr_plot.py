"""The CVR figure (training/experiments/cvr_plot.py): the 16 methods told apart, drawn in the experiment's
order even from the sorted-keys JSON, AUC bars rising from chance."""

from __future__ import annotations

import json

import pytest

from training.experiments.cvr_plot import CHANCE_AUC, cvr_figure, method_style
from training.experiments.settings.cvr import ABLATIONS, METHODS


def report(labels: list[str], seeds: int = 5) -> dict:
    """A report as ``ctr experiment cvr`` writes it, its keys sorted as in the JSON on disk."""
    methods = {
        label: {"cvr_auc_entire_space": {"mean": 0.58 + 0.002 * i, "std": 0.01 if seeds > 1 else None}}
        for i, label in enumerate(labels)
    }
    curves = {
        label: {"predicted": [0.1, 0.2, 0.3], "true": [0.1 + 0.01 * i, 0.2, 0.3]} for i, label in enumerate(labels)
    }
    written = {"config": {"methods": labels, "seeds": seeds}, "methods": methods, "calibration_curves_seed0": curves}
    return json.loads(json.dumps(written, sort_keys=True))


@pytest.fixture
def figure_of(closed_after):
    return lambda r: closed_after(cvr_figure(r))


def test_methods_are_drawn_in_the_experiments_order_from_a_sorted_keys_report(figure_of) -> None:
    labels = list(METHODS)
    assert list(report(labels)["methods"]) != labels  # sorted: the order the plot used to take
    left, right = figure_of(report(labels)).axes
    assert [line.get_label() for line in left.get_lines()][: len(labels)] == labels
    assert [tick.get_text() for tick in right.get_xticklabels()] == labels


def test_every_known_method_has_its_own_look_the_same_in_every_figure(figure_of) -> None:
    known = [*METHODS, *ABLATIONS]
    looks = {(method_style(m)["color"], method_style(m)["marker"], method_style(m)["linestyle"]) for m in known}
    colours = {method_style(m)["color"] for m in known}
    assert len(looks) == len(known) and len(colours) == len(known)
    floor = ["ESCM2-DR oracle propensity", *ABLATIONS]
    left, _ = figure_of(report(floor)).axes
    drawn = {line.get_label(): line.get_color() for line in left.get_lines()}
    assert drawn["ESCM2-DR oracle propensity"] == method_style("ESCM2-DR oracle propensity")["color"]


def test_the_bars_rise_from_chance_and_the_axis_says_so(figure_of) -> None:
    figure = figure_of(report(list(METHODS)))
    _, right = figure.axes
    assert right.get_ylim()[0] == CHANCE_AUC and "50" in right.get_ylabel()
    assert all(bar.get_y() == CHANCE_AUC for bar in right.patches)
    assert all(tick.get_horizontalalignment() == "right" for tick in right.get_xticklabels())
    assert figure.legends and not right.get_legend() and not figure.axes[0].get_legend()  # outside the axes
