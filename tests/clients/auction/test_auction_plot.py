"""The auction figure (clients/auction/plot.py): no error bar where there is no interval, the number of
seeds said, shaded 95% intervals around the daily means."""

from __future__ import annotations

import pytest
from matplotlib.collections import LineCollection, PolyCollection

from clients.auction.plot import auction_figure


def report(seeds: int, one_seed_interval: list[float] | None = None) -> dict:
    """Three pipelines over 3 days and 2 slots; with one seed the slot intervals are ``one_seed_interval``
    (None as ``ci95`` writes now, [v, v] in reports written before)."""
    pipelines = {}
    for p, name in enumerate(("naive", "debiased", "oracle")):
        per_seed = [
            {"days": [{"welfare": 100.0 * (p + 1) + 10 * s + d, "revenue": 50.0 + 5 * s - d} for d in range(3)]}
            for s in range(seeds)
        ]
        days = [
            {"day": d, **{k: sum(x["days"][d][k] for x in per_seed) / seeds for k in ("welfare", "revenue")}}
            for d in range(3)
        ]
        values = [0.8, 0.7]
        if seeds > 1:
            intervals = [[v - 0.1, v + 0.1] for v in values]
        else:
            intervals = [None if one_seed_interval is None else [v, v] for v in values]
        total = {"seeds": seeds, "pctr_over_true_by_slot": values, "pctr_over_true_by_slot_ci95": intervals}
        pipelines[name] = {"days": days, "total": total, "seeds": per_seed}
    return {"config": {"slots": 2}, "pipelines": pipelines}


@pytest.fixture
def figure_of(closed_after):
    return lambda r: closed_after(auction_figure(r))


@pytest.mark.parametrize("interval", [None, [0.8, 0.8]], ids=["null", "zero-width"])
def test_one_seed_draws_no_error_bar_nor_band_and_says_one_seed(figure_of, interval) -> None:
    welfare, _, slots = figure_of(report(1, interval)).axes
    assert not [c for c in slots.collections if isinstance(c, LineCollection)]  # no zero-length bars with caps
    assert not [c for c in welfare.collections if isinstance(c, PolyCollection)]
    assert "one seed" in welfare.get_ylabel() and "one seed" in slots.get_title() and "over" not in slots.get_ylabel()


def test_several_seeds_draw_95_percent_bands_and_bars_and_say_how_many(figure_of) -> None:
    figure = figure_of(report(3))
    welfare, revenue, slots = figure.axes
    for axis in (welfare, revenue):
        assert len([c for c in axis.collections if isinstance(c, PolyCollection)]) == 3  # one band per pipeline
        assert "3 seeds" in axis.get_ylabel() and "95%" in axis.get_title()
        assert all(float(tick).is_integer() for tick in axis.get_xticks())
    assert len([c for c in slots.collections if isinstance(c, LineCollection)]) == 3 and "95%" in slots.get_title()
    assert figure.legends and not any(axis.get_legend() for axis in figure.axes)  # beside the bars, not on them


def test_the_pipelines_differ_in_more_than_colour(figure_of) -> None:
    welfare, _, slots = figure_of(report(3)).axes
    looks = {(line.get_marker(), line.get_linestyle()) for line in welfare.get_lines()}
    assert len(looks) == 3
    assert len({bar.get_hatch() for bar in slots.patches}) == 3


def test_the_legend_names_the_pipelines_that_explored(figure_of) -> None:
    sliced = report(3)
    sliced["config"]["explore"] = 0.1
    labels = [text.get_text() for text in figure_of(sliced).legends[0].get_texts()]
    assert labels == ["naive (10% explored)", "debiased (10% explored)", "oracle"]
    assert [text.get_text() for text in figure_of(report(3)).legends[0].get_texts()] == ["naive", "debiased", "oracle"]
