"""``ctr auction --quick`` end to end: the real service started by the command (one per pipeline),
the project's trainer, one reload through the admin API, the report's stable keys and the logs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from common.log_columns import LABEL_COLUMNS

DAY_KEYS = {
    "day", "revenue", "welfare", "advertiser_surplus", "clicks", "conversions", "ctr_by_slot",
    "pctr_over_true_by_slot", "pcvr_over_true", "regret", "p50_ms", "p99_ms", "errors", "resent", "model_versions",
}  # fmt: skip


# A third of --quick's 300 auctions a day: what is asserted of the run (each pipeline's days, versions, clicks
# and logs) does not depend on how many, and each is scored by the real service and retrained on
REQUESTS_PER_DAY = 100


@pytest.mark.timeout(900)  # trains 4 small models; minutes on a loaded 2-core machine, ~1 alone
def test_quick_run_through_the_real_service_with_one_reload(tmp_path: Path) -> None:
    out, work = tmp_path / "auction.json", tmp_path / "work"
    result = CliRunner().invoke(
        app,
        ["auction", "--quick", "--requests-per-day", str(REQUESTS_PER_DAY), "--pipelines", "naive,debiased,oracle",
         "--out", str(out), "--work-dir", str(work), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report) >= {"config", "pipelines", "seconds", "comparisons"}
    assert out.with_suffix(".png").stat().st_size > 0
    for name in ("naive", "debiased"):
        pipeline = report["pipelines"][name]
        assert pipeline["aborted"] == []
        days = pipeline["seeds"][0]["days"]
        assert len(days) == 2 and all(set(d) >= DAY_KEYS for d in days)
        # version 1 from the history days on day 0; the reload after day 0 serves version 2 on day 1
        assert [d["model_versions"] for d in days] == [{"ctr": [1], "ctcvr": [1]}, {"ctr": [2], "ctcvr": [2]}]
        assert sum(d["errors"] for d in days) == 0
        assert all(d["clicks"] > 0 and len(d["ctr_by_slot"]) == 3 for d in days)
        total = pipeline["total"]
        assert total["welfare_ci95"] is None  # one seed: no interval (it was [v, v], printed "± 0")
    oracle = report["pipelines"]["oracle"]["total"]
    assert oracle["regret"] == 0.0 and oracle["pcvr_over_true"] == 1.0
    assert report["seconds"]["reload"] > 0 and report["seconds"]["retraining"] > 0
    logs = pq.read_table(work / "seed0" / "debiased" / "logs" / "day0.parquet")
    assert set(LABEL_COLUMNS) | {"propensity", "price", "bid"} <= set(logs.column_names)
    assert (logs.column("price").to_numpy() <= logs.column("bid").to_numpy() + 1e-6).all()
    hidden = pq.read_table(work / "seed0" / "debiased" / "logs" / "day0_non_displayed.parquet")
    assert "click" not in hidden.column_names and hidden.num_rows + logs.num_rows == REQUESTS_PER_DAY * 10


def test_flags_given_with_quick_win_over_its_settings(tmp_path: Path) -> None:
    out = tmp_path / "oracle.json"
    result = CliRunner().invoke(
        app,
        ["auction", "--quick", "--seeds", "2", "--requests-per-day", "100", "--pipelines", "oracle", "--out", str(out),
         "--work-dir", str(tmp_path / "work"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads(out.read_text())["config"]
    assert (config["seeds"], config["requests_per_day"], config["days"], config["train_days"]) == (2, 100, 2, 1)


def test_a_run_split_by_first_seed_gives_each_seed_as_the_whole_run_does(tmp_path: Path) -> None:
    """Seeds were 0..N-1 in every run: a second machine could only repeat the first one's seeds."""

    def oracle_run(name: str, *seeds: str) -> dict:
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(
            app,
            ["auction", "--quick", "--days", "1", "--requests-per-day", "100", "--pipelines", "oracle", *seeds,
             "--out", str(out), "--work-dir", str(tmp_path / name), "--no-progress"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text(encoding="utf-8"))

    whole, part = oracle_run("whole", "--seeds", "2"), oracle_run("part", "--first-seed", "1")
    assert (whole["seeds_run"], part["seeds_run"], part["config"]["first_seed"]) == ([0, 1], [1], 1)
    whole_seeds, part_seeds = whole["pipelines"]["oracle"]["seeds"], part["pipelines"]["oracle"]["seeds"]

    def outcome(days: list[dict]) -> list[dict]:
        return [{key: value for key, value in d.items() if key != "scoring_seconds"} for d in days]  # a timing

    assert part_seeds[0]["seed"] == 1
    assert outcome(part_seeds[0]["days"]) == outcome(whole_seeds[1]["days"]) != outcome(whole_seeds[0]["days"])
