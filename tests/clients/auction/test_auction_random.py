"""The ``random`` pipeline, uniform exploration: its allocation (eligible candidates only, a uniform order, the
reserve as the price, the propensity 1 / eligible), real runs through ``ctr auction`` (no service: seconds), that
adding it moves no other pipeline's day, its logs' slot 1 unselected by click rate where GSP's is, its comparisons,
plot and merged parts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clients.auction.gsp import eligible, run_gsp
from clients.auction.plot import auction_figure
from clients.auction.report import summarise
from clients.auction.run import PipelineRun
from clients.auction.selection import slot_one_selection
from clients.auction.uniform import run_uniform, uniform_draws
from tests.support.auction_day import day
from tests.support.ctr_in_process import ctr_in_process
from tests.support.quick_auction import outcomes, quick_auction

RESERVE = 0.2


def test_only_eligible_candidates_are_shown_each_paying_the_reserve_with_its_propensity() -> None:
    bid = np.array(
        [
            [1.0, 0.1, 2.0, 0.0, 3.0, 0.5],  # 4 eligible: 0.1 is under the reserve, 0 offers nothing
            [0.3, 0.1, np.nan, 0.1, 0.1, 0.1],  # 1 eligible: a failed call's NaN never is
            [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],  # none: no ad
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.5],  # 5 of 6: one with pCTR 0
        ]
    )
    pctr = np.full(bid.shape, 0.05)
    pctr[3, 2] = 0.0
    allocation = run_uniform(bid, pctr, 3, RESERVE, uniform_draws(0, 0, 0, bid.shape))
    allowed = eligible(bid, pctr, RESERVE)
    assert allowed.sum(axis=1).tolist() == [4, 1, 0, 5]
    shown = allocation.shown
    assert shown.sum(axis=1).tolist() == [3, 1, 0, 3]  # min(eligible, slots), the first slots filled
    assert not shown[:, 1:][~shown[:, :-1]].any()
    for r in range(len(bid)):
        winners = allocation.winners[r][shown[r]]
        assert len(set(winners.tolist())) == len(winners) and allowed[r, winners].all()
    assert (allocation.price[shown] == RESERVE).all() and (allocation.price[~shown] == 0).all()
    assert (allocation.price[shown] <= np.take_along_axis(bid, np.where(shown, allocation.winners, 0), 1)[shown]).all()
    assert allocation.propensity[shown].tolist() == [1 / 4] * 3 + [1.0] + [1 / 5] * 3
    assert run_gsp(bid, pctr, 3, RESERVE).propensity is None  # GSP is deterministic: its logs keep 1


def test_the_order_is_uniform_over_the_eligible_candidates_in_every_slot() -> None:
    """20,000 requests of 5 candidates, the second under the reserve: each of the 4 eligible ones lands in each slot
    with probability 1/4. Each cell's frequency is a binomial proportion over the requests, its standard deviation
    sqrt(p (1 - p) / R) = 0.0031; 12 cells, each within 4 of them (a false alarm ~1 in 1,300 runs of fresh draws;
    these draws are fixed by their key, so the test is deterministic)."""
    requests = 20_000
    bid = np.tile([1.0, 0.1, 2.0, 3.0, 0.5], (requests, 1))
    draws = uniform_draws(7, 7, 0, bid.shape)
    allocation = run_uniform(bid, np.full(bid.shape, 0.05), 3, RESERVE, draws)
    assert allocation.shown.all() and not (allocation.winners == 1).any()
    frequency = np.stack([(allocation.winners == c).mean(axis=0) for c in (0, 2, 3, 4)])  # (candidate, slot)
    tolerance = 4 * math.sqrt(0.25 * 0.75 / requests)
    assert np.abs(frequency - 0.25).max() < tolerance, frequency
    assert np.abs(frequency - 0.25).max() > 0  # a frequency, not a fixed rotation
    assert not np.array_equal(draws, uniform_draws(7, 7, 1, bid.shape))  # a new order each day
    with pytest.raises(ValueError, match=r"draws must be \(R, K\) as bid"):
        run_uniform(bid, bid, 3, RESERVE, draws[:, :4])


def test_a_random_run_leaves_every_other_pipeline_as_it_was_and_logs_its_propensities(tmp_path: Path) -> None:
    alone = quick_auction(tmp_path, "alone", "--pipelines", "constant,oracle")
    both = quick_auction(tmp_path, "both", "--pipelines", "random,constant,oracle")
    for name in ("constant", "oracle"):  # every day to the cent: the random order is a stream of its own
        assert outcomes(both, name) == outcomes(alone, name)
    random = both["pipelines"]["random"]
    days = random["seeds"][0]["days"]
    constant_days = alone["pipelines"]["constant"]["seeds"][0]["days"]
    assert days[0]["constant_rates"] == constant_days[0]["constant_rates"]  # day 0: the same history window
    assert days[1]["constant_rates"] != constant_days[1]["constant_rates"]  # then the rates of its own logs
    assert all(d["price_over_bid"] < 1 and d["slot_ratio_source"] == "none" for d in days)
    assert list(both["comparisons"]) == ["constant_minus_oracle", "constant_minus_random", "random_minus_oracle"]
    assert both["comparisons"]["random_minus_oracle"]["welfare"] < 0
    logs = tmp_path / "both" / "seed0" / "random" / "logs"
    for d in range(2):
        displayed = pq.read_table(logs / f"day{d}.parquet")
        other = pq.read_table(logs / f"day{d}_non_displayed.parquet")
        assert (displayed.column("price").to_numpy() == np.float32(RESERVE)).all()
        ids = np.concatenate([displayed.column("request_id").to_numpy(zero_copy_only=False),
                              other.column("request_id").to_numpy(zero_copy_only=False)])  # fmt: skip
        bid = np.concatenate([displayed.column("bid").to_numpy(), other.column("bid").to_numpy()])
        counted = dict(zip(*np.unique(ids[bid >= RESERVE], return_counts=True), strict=True))  # pCTR > 0: one rate
        expected = [1 / counted[i] for i in displayed.column("request_id").to_numpy(zero_copy_only=False)]
        assert displayed.column("propensity").to_numpy() == pytest.approx(expected, rel=1e-6)  # float32
    gsp_log = pq.read_table(tmp_path / "both" / "seed0" / "constant" / "logs" / "day0.parquet")
    assert (gsp_log.column("propensity").to_numpy() == 1).all()  # GSP's rows keep 1


def test_its_slot_one_holds_the_eligible_candidates_mean_click_rate_where_gsp_selects(tmp_path: Path) -> None:
    """The exploration claim, falsifiable: the random pipeline's slot-1 ads have its eligible candidates' mean true
    CTR within 3 standard errors over 1,200 requests; the oracle's GSP slot 1, ranked by the truth, is many errors
    above it (random z +0.3, oracle z +31 on these draws)."""
    quick_auction(tmp_path, "run", "--days", "2", "--requests-per-day", "600", "--pipelines", "random,oracle")

    def selection(pipeline: str):
        logs = tmp_path / "run" / "seed0" / pipeline / "logs"
        days = [(pq.read_table(logs / f"day{d}.parquet"), pq.read_table(logs / f"day{d}_non_displayed.parquet"))
                for d in range(2)]  # fmt: skip
        return slot_one_selection(days, RESERVE)

    random, oracle = selection("random"), selection("oracle")
    assert random.requests == oracle.requests == 1200
    assert abs(random.z) < 3, random
    assert oracle.z > 10 and oracle.slot1_true_ctr > 1.5 * oracle.eligible_true_ctr, oracle


def test_slot_one_selection_is_over_the_eligible_candidates_with_the_requests_standard_error() -> None:
    """By hand: request a's eligible candidates are its two shown and one not shown (true CTR 0.3, 0.1, 0.05; its
    other non-displayed one bids below the reserve), b's its slot-1 ad and one not shown (0.2, 0.0): differences
    0.15 and 0.1, their mean 0.125 and its standard error the sample standard deviation over sqrt(2). Logs without
    an ad in slot 1 are refused, naming what they lack."""
    displayed = pa.table({"request_id": ["a", "a", "b"], "position": [1, 2, 1], "true_ctr": [0.3, 0.1, 0.2]})
    other = pa.table(
        {"request_id": ["a", "a", "b"], "bid": [0.5, 0.1, 0.5], "pctr": [0.1, 0.1, 0.1], "true_ctr": [0.05, 0.9, 0.0]}
    )
    selection = slot_one_selection([(displayed, other)], RESERVE)
    assert selection.requests == 2
    assert selection.slot1_true_ctr == pytest.approx(0.25)
    assert selection.eligible_true_ctr == pytest.approx(0.125)
    assert selection.difference == pytest.approx(0.125)
    assert selection.standard_error == pytest.approx(0.025)  # stdev([0.15, 0.1]) / sqrt(2)
    lower = displayed.set_column(1, "position", pa.array([2, 3, 2]))
    with pytest.raises(ValueError, match="no request with an ad in slot 1"):
        slot_one_selection([(lower, other)], RESERVE)


def test_comparisons_pair_the_random_pipeline_with_every_other_that_ran() -> None:
    runs = {name: [PipelineRun(days=[day(w)])] for name, w in (("naive", 5.0), ("debiased", 6.0), ("constant", 2.0),
                                                                ("random", 1.5), ("oracle", 9.0))}  # fmt: skip
    comparisons = summarise(runs, {"days": 1}, 1.0)["comparisons"]
    random_pairs = {pair: c["welfare"] for pair, c in comparisons.items() if "random" in pair}
    assert random_pairs == {"naive_minus_random": 3.5, "debiased_minus_random": 4.5, "constant_minus_random": 0.5,
                            "random_minus_oracle": -7.5}  # fmt: skip


def test_five_pipelines_draw_five_lines_and_five_bars(closed_after) -> None:
    """Four looks were defined: a fifth pipeline was left out of the figure (zip without strict)."""
    names = ("naive", "debiased", "constant", "random", "oracle")
    total = {"seeds": 1, "pctr_over_true_by_slot": [1.0, 0.9], "pctr_over_true_by_slot_ci95": [None, None]}
    days = [{"day": d, "welfare": 1.0 + d, "revenue": 2.0} for d in range(2)]
    report = {"config": {"slots": 2}, "pipelines": {n: {"days": days, "total": total, "seeds": [{"days": days}]}
                                                    for n in names}}  # fmt: skip
    figure = closed_after(auction_figure(report))
    welfare, _, calibration = figure.axes
    assert [line.get_label() for line in welfare.get_lines()] == list(names)
    assert len(calibration.patches) == 2 * len(names)
    assert [text.get_text() for text in figure.legends[0].get_texts()] == list(names)


def test_two_random_parts_merge_into_the_two_seed_run(tmp_path: Path, monkeypatch, capsys) -> None:
    whole = quick_auction(tmp_path, "whole", "--seeds", "2", "--pipelines", "random")
    for seed in (0, 1):
        quick_auction(tmp_path, f"seed{seed}", "--first-seed", str(seed), "--pipelines", "random")
    out = tmp_path / "merged.json"
    parts = [str(tmp_path / f"seed{seed}.json") for seed in (0, 1)]
    merged = ctr_in_process(monkeypatch, capsys, "auction-merge", *parts, "--out", str(out))
    assert merged.returncode == 0, merged.stderr
    assert "| random |" in merged.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert outcomes(report, "random") == outcomes(whole, "random")  # the same orders, the same days
    assert report["pipelines"]["random"]["total"]["welfare"] == whole["pipelines"]["random"]["total"]["welfare"]


def test_the_floor_report_reads_the_bid_orders_agreement_with_the_truth_from_the_logs(tmp_path: Path) -> None:
    """reports/auction_constant_floor.py's ``order_agreement``: its rank correlation is Spearman's, and on a run the
    highest bid holds the highest true value per impression more often than a draw of 1 in 10 candidates would."""
    from reports.auction_constant_floor import _spearman, order_agreement, selections

    a = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0], [2.0, 1.0, 4.0, 3.0]])
    assert _spearman(a, b).tolist() == [1.0, -1.0, 0.6]
    report = quick_auction(tmp_path, "run", "--pipelines", "random,constant,oracle")
    agreement = order_agreement(report, tmp_path / "run", "constant")
    assert agreement["requests"] == 600 and 0 < agreement["all_eligible"] <= 600
    assert agreement["top_agrees"] > 2 * agreement["top_agrees_by_chance"] == 0.2
    chosen = selections(report, tmp_path / "run")
    assert list(chosen) == ["random", "constant", "oracle"] and abs(chosen["random"]["z"]) < 3 < chosen["oracle"]["z"]
