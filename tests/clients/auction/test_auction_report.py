"""The auction's report and its checks, without a run: pipelines named once, comparisons over the days both
pipelines ran, a reload the service does not answer stopping the pipeline (not the run)."""

from __future__ import annotations

import asyncio

import pytest

from clients.auction.pipelines import check_pipelines
from clients.auction.report import COMPARED, summarise, table
from clients.auction.retrain import ReloadRefused, reload_and_confirm
from clients.auction.run import PipelineRun
from clients.client import AsyncScoringClient
from tests.support.auction_day import day


def test_a_pipeline_named_twice_is_refused() -> None:
    """``--pipelines oracle,oracle`` was summarised as two seeds of one seed: a zero-width interval."""
    with pytest.raises(ValueError, match=r"\['oracle'\] named more than once"):
        check_pipelines(["oracle", "oracle"])


def test_a_pipeline_stopped_early_is_compared_on_the_days_both_ran() -> None:
    """Its one day was compared with the other's three (welfare -377 where the day-0 gap was -55)."""
    runs = {
        "debiased": [PipelineRun(days=[day(125.0)], aborted="day 0: refused")],
        "oracle": [PipelineRun(days=[day(180.0), day(160.0), day(161.5)])],
    }
    report = summarise(runs, {"days": 3}, 1.0)
    comparison = report["comparisons"]["debiased_minus_oracle"]
    assert comparison["welfare"] == -55.0 and comparison["days"] == [1]
    assert set(COMPARED) <= set(comparison)
    assert "(over days [1] per seed: a pipeline stopped early)" in table(report)
    assert report["pipelines"]["oracle"]["total"]["welfare"] == 501.5  # each pipeline's own total is kept whole


def test_seed_days_with_failed_scoring_calls_are_left_out_of_the_paired_comparisons() -> None:
    """A failed call is an auction without ads on one side only: seed 0's day 1 (debiased's 7 failures) was
    compared as a welfare gap of -60 among days of -10. Now that day is left out of both sides, and a seed with
    no day left (seed 3: every day failed) out of the mean; each pipeline's own totals keep their days whole."""
    failed = day(40.0) | {"errors": 7}
    runs = {
        "debiased": [PipelineRun(seed=0, days=[day(90.0), failed]), PipelineRun(seed=3, days=[failed])],
        "oracle": [PipelineRun(seed=0, days=[day(100.0), day(100.0)]), PipelineRun(seed=3, days=[day(100.0)])],
    }
    report = summarise(runs, {"days": 2}, 1.0)
    comparison = report["comparisons"]["debiased_minus_oracle"]
    assert comparison["welfare"] == -10.0 and comparison["welfare_ci95"] is None  # one seed compared
    assert (comparison["seeds"], comparison["paired_seeds"]) == ([0], [0, 3])
    assert (comparison["days"], comparison["failed_days_left_out"]) == ([2, 1], [[1], [0]])
    assert "(without the 2 seed-day(s) with failed scoring calls: failed_days_left_out)" in table(report)
    assert report["pipelines"]["debiased"]["seeds"][0]["total"]["welfare"] == 130.0
    assert report["seeds_run"] == [0, 3]


def test_a_pair_whose_every_day_failed_has_no_figures() -> None:
    """No day left to compare: None, shown n/a (a mean of no differences was numpy's NaN and a warning)."""
    runs = {"debiased": [PipelineRun(days=[day(1.0) | {"errors": 3}])], "oracle": [PipelineRun(days=[day(2.0)])]}
    comparison = summarise(runs, {"days": 1}, 1.0)["comparisons"]["debiased_minus_oracle"]
    assert comparison["welfare"] is None and comparison["revenue_by_slot"] is None and comparison["seeds"] == []


def test_a_reload_the_service_does_not_answer_stops_the_pipeline_with_why() -> None:
    """A service gone during the reload (a restart) raised httpx's ConnectError through the whole run: no
    report. Now a refused reload, as the docs promise: the pipeline stops with the message, keeps its days."""

    async def reload() -> None:
        async with AsyncScoringClient("http://127.0.0.1:9", max_retries=0) as client:
            await reload_and_confirm(client, "t" * 16, {"ctr": "esmm", "ctcvr": "esmm"}, {"ctr": 2, "ctcvr": 2})

    with pytest.raises(ReloadRefused, match=r"the service did not answer the load of esmm version 2"):
        asyncio.run(reload())


def test_a_pipeline_without_slot_calibration_is_summarised_as_none() -> None:
    """Its days hold None (no slot ratios): the totals say None, not a NaN mean nor an interval of NaNs."""
    uncalibrated = [PipelineRun(days=[day(w) | {"slot_pctr_over_true_by_slot": None} for w in (1.0, 2.0)])]
    report = summarise({"naive": uncalibrated, "oracle": [PipelineRun(days=[day(3.0), day(4.0)])]}, {"days": 2}, 1.0)
    naive = report["pipelines"]["naive"]
    assert naive["total"]["slot_pctr_over_true_by_slot"] is None
    assert naive["total"]["slot_pctr_over_true_by_slot_ci95"] is None
    assert naive["days"][0]["slot_pctr_over_true_by_slot"] is None
    assert report["pipelines"]["oracle"]["total"]["slot_pctr_over_true_by_slot"] == [1.0, 1.0]
