"""One auction day (clients/auction/day.py) on a small world scored by the truth: who pays what, and how the
world's clicks depend on the slot shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clients.auction.advertisers import Advertisers
from clients.auction.day import DayOutcome, run_day
from clients.auction.pipelines import oracle_scores
from clients.auction.run import AuctionConfig, run_auction
from clients.auction.traffic import draw_day
from training.world import World, WorldConfig


@pytest.fixture(scope="module")
def day() -> tuple[World, DayOutcome]:
    world = World(WorldConfig(n_users=2000, n_ads=200, n_advertisers=50))
    advertisers = Advertisers.draw(world, np.random.default_rng(0))
    requests = draw_day(world, 0, 0, 20_000)
    return world, run_day(world, advertisers, requests, oracle_scores(world, requests), 0.0)


def test_the_revenue_is_the_prices_of_the_clicked_slots(day: tuple[World, DayOutcome]) -> None:
    """GSP prices are per click: an ad shown and not clicked pays nothing."""
    _, outcome = day
    click = outcome.displayed["click"].to_numpy().astype(bool)
    price = outcome.displayed["price"].to_numpy().astype(np.float64)
    assert 0 < click.sum() < click.size
    assert outcome.metrics["revenue"] == pytest.approx(price[click].sum(), rel=1e-5)
    assert outcome.metrics["revenue"] < 0.5 * price.sum()
    assert outcome.metrics["clicks"] == click.sum()


def test_a_slot_is_clicked_at_its_examination_times_the_true_ctr(day: tuple[World, DayOutcome]) -> None:
    """A click at slot k is drawn with probability theta_k x the ad's true top-slot CTR: slot 2 (theta 1/2
    here) is clicked about half as often as its ads would be at the top; slot 1 at their true CTR."""
    world, outcome = day
    theta = world.examination()
    assert theta[1] == 0.5
    position = outcome.displayed["position"].to_numpy()
    click = outcome.displayed["click"].to_numpy()
    true_ctr = outcome.displayed["true_ctr"].to_numpy().astype(np.float64)
    for slot in (1, 2, 5):
        at = position == slot
        assert at.sum() == 20_000
        assert click[at].sum() == pytest.approx(theta[slot - 1] * true_ctr[at].sum(), rel=0.15)


def test_without_slot_ratios_there_is_no_slot_calibration(day: tuple[World, DayOutcome]) -> None:
    """A pipeline whose service publishes no ``ctr_ratios`` got r_k from its own logs (CTR at k over CTR at 1),
    which mixes the slot's effect with which ads land lower down: now it gets no figure, and says why."""
    _, outcome = day
    assert outcome.metrics["slot_pctr_over_true_by_slot"] is None
    assert outcome.metrics["slot_ratios"] is None and outcome.metrics["slot_ratio_source"] == "none"
    assert outcome.metrics["pctr_over_true_by_slot"] == pytest.approx([1.0] * 5)  # the top-slot figure stays


def test_the_oracle_is_calibrated_at_every_slot_in_a_run(tmp_path: Path) -> None:
    """The oracle scores with the truth, so pCTR x r_k equals theta_k x true CTR at every slot. With r_k
    measured in its own logs it read 1, 0.85, 0.41 on seed 0's first day: lower slots get other ads."""
    config = AuctionConfig(pipelines=("oracle",), days=2, seeds=1, work_dir=tmp_path, progress=False)
    days = run_auction(config)["pipelines"]["oracle"]["seeds"][0]["days"]
    for metrics in days:
        assert metrics["slot_pctr_over_true_by_slot"] == pytest.approx([1.0, 1.0, 1.0])
        assert metrics["slot_ratio_source"] == "world" and metrics["slot_ratios"] == [1.0, 0.5, pytest.approx(1 / 3)]
