"""The ``constant`` pipeline, the untrained baseline: every candidate of a day scored by the click rate and the
conversions-per-click rate of its own last ``train_days`` days of logs (the history's on day 0), in real runs
(no service: seconds), its comparisons, and its reports merged."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from clients.auction.pipelines import check_pipelines
from clients.auction.report import summarise
from clients.auction.run import PipelineRun
from tests.support.auction_day import day
from tests.support.ctr_in_process import ctr_in_process


def auction(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / f"{name}.json"
    result = CliRunner().invoke(
        app,
        ["auction", "--quick", "--requests-per-day", "100", *args, "--out", str(out), "--work-dir",
         str(tmp_path / name), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def counts(path: Path) -> tuple[int, int, int]:
    """Impressions, clicks and conversions of a day's log, read back from its file."""
    table = pq.read_table(path)
    return table.num_rows, int(table.column("click").to_numpy().sum()), int(table.column("conversion").to_numpy().sum())


def rates_of(logs: list[Path]) -> dict[str, float]:
    impressions, clicks, conversions = (sum(c) for c in zip(*map(counts, logs), strict=True))
    return {"ctr": clicks / impressions, "cvr": conversions / clicks}


def test_each_day_is_scored_by_the_rates_of_its_own_previous_days_of_logs(tmp_path: Path) -> None:
    out = auction(tmp_path, "run", "--days", "3", "--train-days", "2", "--pipelines", "constant,oracle")
    report = json.loads(out.read_text(encoding="utf-8"))
    seed = tmp_path / "run" / "seed0"
    history = [seed / "history" / "day-2.parquet", seed / "history" / "day-1.parquet"]
    own = [seed / "constant" / "logs" / f"day{d}.parquet" for d in range(3)]
    days = report["pipelines"]["constant"]["seeds"][0]["days"]
    # day 0: the history window every pipeline starts from; then its own logs, the 2 latest days
    windows = [history, [history[1], own[0]], own[:2]]
    assert [d["constant_rates"] for d in days] == [rates_of(w) for w in windows]  # the same counts: to the bit
    assert days[1]["constant_rates"] != days[0]["constant_rates"]  # its own allocations' rates, not the history's
    assert all(d["slot_ratio_source"] == "none" and d["slot_pctr_over_true_by_slot"] is None for d in days)
    for d in range(3):  # one pCTR for every candidate of the day (the ones not shown carry theirs in the log)
        pctr = pq.read_table(seed / "constant" / "logs" / f"day{d}_non_displayed.parquet").column("pctr").to_numpy()
        assert pctr.min() == pctr.max() == pytest.approx(days[d]["constant_rates"]["ctr"], rel=1e-6)  # float32
    assert list(report["comparisons"]) == ["constant_minus_oracle"]
    assert report["comparisons"]["constant_minus_oracle"]["welfare"] < 0  # the truth beats base rates
    assert "model_configs" not in report or "constant" not in report["model_configs"]
    assert out.with_suffix(".png").stat().st_size > 0


def test_comparisons_pair_the_constant_pipeline_with_every_other_that_ran() -> None:
    runs = {name: [PipelineRun(days=[day(w)])] for name, w in (("naive", 5.0), ("debiased", 6.0), ("constant", 2.0),
                                                                ("oracle", 9.0))}  # fmt: skip
    comparisons = summarise(runs, {"days": 1}, 1.0)["comparisons"]
    assert {pair: c["welfare"] for pair, c in comparisons.items()} == {
        "debiased_minus_naive": 1.0, "debiased_minus_oracle": -3.0, "naive_minus_oracle": -4.0,
        "naive_minus_constant": 3.0, "debiased_minus_constant": 4.0, "constant_minus_oracle": -7.0,
    }  # fmt: skip
    without = {name: per_seed for name, per_seed in runs.items() if name != "constant"}
    assert not any("constant" in pair for pair in summarise(without, {"days": 1}, 1.0)["comparisons"])


def test_two_constant_parts_merge_into_the_two_seed_run(tmp_path: Path, monkeypatch, capsys) -> None:
    whole = json.loads(auction(tmp_path, "whole", "--seeds", "2", "--pipelines", "constant").read_text())
    parts = [auction(tmp_path, "seed0", "--pipelines", "constant"),
             auction(tmp_path, "seed1", "--first-seed", "1", "--pipelines", "constant")]  # fmt: skip
    out = tmp_path / "merged.json"
    merged = ctr_in_process(monkeypatch, capsys, "auction-merge", *map(str, parts), "--out", str(out))
    assert merged.returncode == 0, merged.stderr
    assert "| constant |" in merged.stdout
    report = json.loads(out.read_text(encoding="utf-8"))

    def rates(report: dict) -> list[list[dict]]:
        return [[d["constant_rates"] for d in seed["days"]] for seed in report["pipelines"]["constant"]["seeds"]]

    assert rates(report) == rates(whole) and report["seeds_run"] == [0, 1]
    assert report["pipelines"]["constant"]["total"]["welfare"] == whole["pipelines"]["constant"]["total"]["welfare"]
    assert report["pipelines"]["constant"]["total"]["welfare_ci95"] is not None  # two seeds: an interval


def test_an_unknown_pipeline_is_refused_naming_the_known_ones() -> None:
    known = r"\['naive', 'debiased', 'constant', 'random', 'oracle'\]"
    with pytest.raises(ValueError, match=rf"among {known}, got \['uniform'\]"):
        check_pipelines(["uniform"])


def test_a_window_without_a_click_stops_it_saying_so(tmp_path: Path, monkeypatch, capsys) -> None:
    """No click, no conversions-per-click rate: the history's (seed 0 at 1 request a day) refuses the run before
    day 0; its own day 0's (at 3 requests a day, 9 impressions) stops the pipeline with its day kept, exit 1."""

    def run(requests: str) -> tuple[object, Path]:
        out = tmp_path / f"r{requests}.json"
        args = ["--requests-per-day", requests, "--pipelines", "constant", "--out", str(out)]
        return ctr_in_process(monkeypatch, capsys, "auction", "--quick", *args, "--work-dir", str(tmp_path)), out

    refused, out = run("1")
    assert refused.returncode == 2 and not out.exists(), refused.stderr
    assert (
        "error: seed 0: the constant pipeline's day-0 rates are the history's: no click among the 3" in refused.stderr
    )
    stopped, out = run("3")
    assert stopped.returncode == 1, stopped.stderr
    constant = json.loads(out.read_text(encoding="utf-8"))["pipelines"]["constant"]
    assert constant["aborted"] == ["day 0: no click among the 9 impressions of its window: no conversion rate"]
    assert len(constant["seeds"][0]["days"]) == 1
