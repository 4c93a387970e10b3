"""``ctr auction --retrieval esam --retrain-retrieval``: each pipeline retrains its own ESAM on its own days and loads
it into its own retrieval service; day 0 is the seed's, shared. Real runs: real ESAM trainings, real services on
loopback ports with admin loads, real similarity calls, against a run of the same seed without the flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from clients.auction.merge import merge_reports
from clients.auction.retrieval import RETRIEVAL_FIGURES
from clients.auction.retrieval_daily import HISTORY_KEPT, LATEST, day_logs, window_days
from clients.auction.run import AuctionConfig
from clients.auction.traffic import draw_day
from reports.auction_retrieval import against
from reports.auction_retrieval_daily import WINDOW, compare_daily
from tests.support.auction_retrieval import auctioned, esam_top_k
from training.logs.fingerprint import fingerprint

POOL, REQUESTS = 20, 60
PIPELINES = ("oracle", "constant")


def auction(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    result = CliRunner().invoke(
        app,
        ["auction", "--quick", "--requests-per-day", str(REQUESTS), "--retrieval", "esam", "--pool", str(POOL),
         "--pipelines", ",".join(PIPELINES), *args, "--out", str(out), "--work-dir", str(tmp_path / name),
         "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8")) | {"output": result.output, "path": str(out)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    """The work folder, a run with ``--retrain-retrieval`` and one of the same seed without it (2 days, 1 training
    day: one retraining after day 0)."""
    tmp_path = tmp_path_factory.mktemp("daily")
    return tmp_path, auction(tmp_path, "daily", "--retrain-retrieval"), auction(tmp_path, "fixed")


def days_of(report: dict, pipeline: str) -> list[dict]:
    return report["pipelines"][pipeline]["seeds"][0]["days"]


def test_each_pipeline_retrieves_day_1_with_its_esam_retrained_on_its_own_day_0(runs: tuple[Path, dict, dict]) -> None:
    tmp_path, daily, _ = runs
    assert daily["config"]["retrain_retrieval"] is True
    config = AuctionConfig(days=2, requests_per_day=REQUESTS, train_days=1, pipelines=PIPELINES, retrieval="esam",
                           pool=POOL, retrain_retrieval=True)  # fmt: skip
    world = config.world(0)
    seed = tmp_path / "daily" / "seed0"
    day1 = {}
    for pipeline in PIPELINES:
        days, logs = days_of(daily, pipeline), seed / pipeline / "logs"
        assert [d["retrieval_versions"] for d in days] == [[1], [2]]  # the served version increased after day 0
        repository = seed / pipeline / "retrieval" / "models"
        version2 = json.loads((repository / "esam" / "2" / "model.json").read_text(encoding="utf-8"))
        own = tmp_path / f"{pipeline}_window"  # its window (1 training day): its day-0 logs, as it copies them
        for kind, file in (("displayed", "day0.parquet"), ("non_displayed", "day0_non_displayed.parquet")):
            (own / kind).mkdir(parents=True)
            shutil.copyfile(logs / file, own / kind / file)
        assert version2["data_fingerprint"] == (
            f"displayed:{fingerprint(own / 'displayed')}|non_displayed:{fingerprint(own / 'non_displayed')}"
        )
        assert days[1]["retrieval_window_rows"] == REQUESTS * config.candidates  # every retrieved candidate of day 0
        pool = draw_day(world, 0, 1, REQUESTS, config.train_days, POOL)
        retrieved = esam_top_k(repository, 2, world, pool, config.candidates)
        day1[pipeline] = auctioned(logs, 1)
        same = [day1[pipeline][r] == set(retrieved[r].tolist()) for r in range(REQUESTS)]
        assert np.mean(same) >= 0.95, np.mean(same)  # the service's float32 batches may reorder a near-tie
        said = (seed / pipeline / "retrieval" / "service.log").read_text(encoding="utf-8")
        assert " ERROR " not in said, said
    # the two pipelines displayed, so clicked, other ads of the same day-0 candidates: their retrievers differ
    assert day1["oracle"] != day1["constant"]
    assert auctioned(seed / "oracle" / "logs", 0) == auctioned(seed / "constant" / "logs", 0)
    assert "retrieval esam retrained on the oracle pipeline's days, 10 of 20 ads a request" in daily["output"]
    assert "retrieval esam retrained on the constant pipeline's days" in daily["output"]


def test_day_0_is_the_run_without_the_flag_and_that_run_records_nothing_new(runs: tuple[Path, dict, dict]) -> None:
    _, daily, fixed = runs
    assert "retrain_retrieval" not in fixed["config"]  # the report a run without it wrote before it
    for pipeline in PIPELINES:
        new = {"retrieval_versions", "retrieval_window_rows", "retrieval_window_ads"}
        assert all(not new & set(d) for d in days_of(fixed, pipeline))
        assert days_of(daily, pipeline)[0] == days_of(fixed, pipeline)[0] | {
            key: days_of(daily, pipeline)[0][key] for key in (*new, "p50_ms", "p99_ms", "scoring_seconds")
        }  # day 0 auctioned as before, figure for figure (but the clock's)
    figures = [{k: d[k] for k in RETRIEVAL_FIGURES} for d in days_of(fixed, "oracle")]
    assert figures == [{k: d[k] for k in RETRIEVAL_FIGURES} for d in days_of(fixed, "constant")]  # shared
    with pytest.raises(ValueError, match=r"retrain_retrieval True \(not 'not recorded'\)"):
        merge_reports(
            [(Path(p["path"]), {k: v for k, v in p.items() if k not in ("output", "path")}) for p in (fixed, daily)]
        )


def test_the_daily_comparison_pairs_each_day_and_names_the_pipeline_of_the_figures(
    runs: tuple[Path, dict, dict],
) -> None:
    tmp_path, daily, fixed = runs
    report = compare_daily(
        fixed, daily, "constant", control_work_dir=tmp_path / "fixed", variant_work_dir=tmp_path / "daily"
    )
    day0, day1 = report["by_day"]
    # before day 1 both windows are day 0's candidates, the same in both runs
    assert report["control_windows"] == [{"day": 1} | {k: day1[k] for k in WINDOW}]
    [seen] = report["seen_shares"]  # day 1, retrieved by the version trained on day 0's candidates
    assert seen["window_ads"] == day1["retrieval_window_ads"] and 0 < seen["pool_seen_share"] < 1
    retrieved = auctioned(tmp_path / "daily" / "seed0" / "constant" / "logs", 1)
    window = set().union(*auctioned(tmp_path / "daily" / "seed0" / "constant" / "logs", 0).values())
    in_window = [ad in window for ads in retrieved.values() for ad in ads]
    assert seen["retrieved_seen_share"] == pytest.approx(np.mean(in_window))
    assert all(day0[k]["variant_minus_control"] == 0.0 for k in (*RETRIEVAL_FIGURES, "welfare"))  # the same day 0
    assert day1["retrieval_versions"] == [[2]] and day1["retrieval_window_rows"] == REQUESTS * 10
    assert day1["retrieval_top_ctr_share"]["variant"] == days_of(daily, "constant")[1]["retrieval_top_ctr_share"]
    with pytest.raises(SystemExit, match="retrained a retriever per pipeline \\(oracle, constant\\): name the"):
        against(fixed, daily)  # whose figures, of two retrievers?
    with pytest.raises(SystemExit, match="--control is a run without --retrain-retrieval"):
        compare_daily(daily, fixed, "oracle")


def test_the_untrained_reference_may_be_another_pipelines_run_of_the_same_retriever(
    runs: tuple[Path, dict, dict],
) -> None:
    _, daily, fixed = runs
    # a fixed retriever retrieves the same candidates for every pipeline of its run: its figures are the pools'
    for day_oracle, day_constant in zip(days_of(fixed, "oracle"), days_of(fixed, "constant"), strict=True):
        assert {k: day_oracle[k] for k in RETRIEVAL_FIGURES} == {k: day_constant[k] for k in RETRIEVAL_FIGURES}
    reference = fixed | {"pipelines": {"oracle": fixed["pipelines"]["oracle"]}}  # a run of the oracle alone
    with pytest.raises(SystemExit, match="the --untrained run has no constant pipeline \\(it ran oracle\\): name one"):
        compare_daily(fixed, daily, "constant", reference)
    report = compare_daily(fixed, daily, "constant", reference, untrained_pipeline="oracle")
    assert report["untrained_pipeline"] == "oracle"
    for entry, day in zip(report["untrained_by_day"], days_of(fixed, "oracle"), strict=True):
        assert {k: entry[k] for k in (*RETRIEVAL_FIGURES, "welfare")} == {
            k: float(day[k]) for k in (*RETRIEVAL_FIGURES, "welfare")
        }  # the oracle's outcomes, the retrieval figures also the constant pipeline's
    assert compare_daily(fixed, daily, "oracle", reference)["untrained_pipeline"] == "oracle"  # by default, --pipeline


def test_a_history_kept_window_trains_day_1s_retriever_on_the_history_days_and_day_0(
    runs: tuple[Path, dict, dict],
) -> None:
    tmp_path, latest, _ = runs
    kept = auction(tmp_path, "kept", "--retrain-retrieval", "--retrieval-window", "history-kept")
    assert kept["config"]["retrieval_window"] == "history-kept"
    assert "retrieval_window" not in latest["config"]  # the default window's run writes the report of before
    seed = tmp_path / "kept" / "seed0"
    [history] = seed.glob("**/history/day-1.parquet")  # the seed's history window (1 training day): displayed
    [history_non_displayed] = seed.glob("**/non_displayed/day-1.parquet")  # and its non-displayed candidates
    for pipeline in PIPELINES:
        days, logs = days_of(kept, pipeline), seed / pipeline / "logs"
        assert days[0] == days_of(latest, pipeline)[0] | {
            k: days[0][k] for k in ("p50_ms", "p99_ms", "scoring_seconds")
        }
        # day 1's version trained on the history window's day and the pipeline's day 0: the latest window's rows and
        # the history's, which the latest window (1 training day) dropped
        assert days[1]["retrieval_window_rows"] == days[0]["retrieval_window_rows"] + REQUESTS * 10
        assert days_of(latest, pipeline)[1]["retrieval_window_rows"] == REQUESTS * 10
        assert days[1]["retrieval_window_ads"] > days_of(latest, pipeline)[1]["retrieval_window_ads"]
        own = tmp_path / f"{pipeline}_kept_window"  # the files it trained on, as it copies them
        for kind, files in (
            ("displayed", [history, logs / "day0.parquet"]),
            ("non_displayed", [history_non_displayed, logs / "day0_non_displayed.parquet"]),
        ):
            (own / kind).mkdir(parents=True)
            for file in files:
                shutil.copyfile(file, own / kind / file.name)
        version2 = json.loads(
            (seed / pipeline / "retrieval" / "models" / "esam" / "2" / "model.json").read_text(encoding="utf-8")
        )
        # every request of both days its own query: the history's day -1 was simulated as the world's day 0, and its
        # request ids ("d0-r5") were day 0's, so the two days' requests were merged in pairs (REQUESTS queries)
        assert version2["training"]["queries"] == 2 * REQUESTS
        assert version2["data_fingerprint"] == (
            f"displayed:{fingerprint(own / 'displayed')}|non_displayed:{fingerprint(own / 'non_displayed')}"
        )
    # the daily comparison pairs it with the latest window's run, its seen shares over the history-kept window
    report = compare_daily(latest, kept, "oracle", variant_work_dir=tmp_path / "kept")
    [seen] = report["seen_shares"]
    assert seen["window_ads"] == days_of(kept, "oracle")[1]["retrieval_window_ads"]
    assert report["by_day"][1]["retrieval_window_rows"] == days_of(kept, "oracle")[1]["retrieval_window_rows"]
    with pytest.raises(SystemExit, match=r"--control is a run without --retrain-retrieval \(or with another"):
        compare_daily(kept, kept, "oracle")


def test_a_retraining_window_holds_the_latest_days_or_the_history_and_the_latest_of_the_pipeline_s_own() -> None:
    """After day 3 with 2 training days: ``latest`` trains on days 2 and 3, the history's dropped; ``history-kept``
    on the history's two days, then days 2 and 3 (not every day of the pipeline's since day 0). After day 0:
    ``latest`` keeps the history's last day beside day 0."""
    history = [(Path(f"h{d}.parquet"), Path(f"h{d}_non_displayed.parquet")) for d in (-2, -1)]
    logs = Path("logs")
    assert window_days(history, logs, 3, 2, LATEST) == [day_logs(logs, 2), day_logs(logs, 3)]
    assert window_days(history, logs, 3, 2, HISTORY_KEPT) == [*history, day_logs(logs, 2), day_logs(logs, 3)]
    assert window_days(history, logs, 0, 2, LATEST) == [history[1], day_logs(logs, 0)]
