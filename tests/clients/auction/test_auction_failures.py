"""Failed scoring calls, without a service: each kind counted once whatever numbers its message names, the
warnings rate-limited, a day whose calls all failed stopping its pipeline, and ``ctr auction`` saying so and
exiting 1 (a killed service printed the comparison as usual and exited 0)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from clients.auction.pipelines import WARNED_FAILURES, error_kind, service_scores
from clients.auction.report import scoring_warnings, stale_warnings
from clients.auction.traffic import draw_day
from clients.client import ModelStatus, ServiceError
from training.world import World, WorldConfig


class Refusing:
    """A scoring client whose every call fails with a 504 naming how late it was."""

    resent = retried = 0

    def __init__(self) -> None:
        self.calls = 0

    async def score(self, context: dict, candidates: list) -> None:
        self.calls += 1
        raise ServiceError(504, f"the request was {3990 + self.calls}.5 ms late (deadline 1000 ms)")

    async def models(self) -> list[ModelStatus]:
        return [ModelStatus(name="ctr", roles=["ctr"], ready=True, version=2)]

    async def aclose(self) -> None:
        pass


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(n_users=2000, n_ads=200, n_advertisers=50, n_slots=3, n_candidates=10))


def test_a_kind_of_failure_is_one_key_whatever_numbers_it_names() -> None:
    """One cause gave 12 keys ``...3996.5 ms late...``; the status stays a number."""
    assert error_kind(ServiceError(504, "3996.5 ms late, deadline 1000 ms")) == "504: N ms late, deadline N ms"
    assert error_kind(ServiceError(504, "12 ms late, deadline 1000 ms")) == "504: N ms late, deadline N ms"


def test_failed_calls_are_warned_a_few_then_counted(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Every failed call was a WARNING line: 5,017 lines (541 KB) from a service killed mid-run."""
    requests = draw_day(world, 0, 0, 40)
    with caplog.at_level(logging.WARNING, logger="clients.auction.pipelines"):
        scores = asyncio.run(service_scores(Refusing(), world, requests, 4))
    assert scores.errors == 40 and scores.error_kinds == {"504: the request was N ms late (deadline N ms)": 40}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == WARNED_FAILURES + 1
    assert (
        lines[-1]
        == f"day 0: {40 - WARNED_FAILURES} more requests failed (40 of 40 in all, by kind in the report's error_kinds)"
    )


def test_a_day_whose_calls_all_failed_stops_its_pipeline(world: World, tmp_path: Path, monkeypatch) -> None:
    """A dead service's day was followed by another one; the day is kept (its failures counted, said by
    scoring_warnings) and is the last: left out, a service dead from day 0 left its pipeline no days, and the
    table and the plot ended in a traceback."""
    import clients.auction.run as run
    from clients.auction.plot import plot_report
    from clients.auction.report import summarise, table

    monkeypatch.setattr(run, "AsyncScoringClient", lambda url, max_connections: Refusing())
    config = run.AuctionConfig(days=3, requests_per_day=30, seeds=1, pipelines=("debiased",), progress=False)
    service = run.RunningService(url="http://127.0.0.1:9", token="", log=tmp_path / "service.log")
    advertisers = config.advertisers(world, 0)
    done = run.PipelineRun(seed=0)
    asyncio.run(run._days(done, "debiased", world, advertisers, config, tmp_path, None, None, service, {"ctr": "ctr"}))
    assert [day["errors"] for day in done.days] == [30]
    assert (
        done.aborted
        == "day 0: all 30 scoring calls failed, most often '504: the request was N ms late (deadline N ms)'"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's "Mean of empty slice" was printed
        report = summarise({"debiased": [done]}, run._config_dict(config), 1.0)
    assert "debiased" in table(report)
    plot_report(report, tmp_path / "report.png")
    assert scoring_warnings(report)[0].startswith("WARNING: pipeline debiased: 30 of 30 scoring calls failed")


def report_with_errors(errors: int) -> dict:
    day = {"errors": errors, "requests": 300, "error_kinds": {"ConnectError": errors} if errors else {}}
    seeds = [{"days": [day, dict(day, errors=0, error_kinds={})]}]
    return {
        "pipelines": {
            "debiased": {"seeds": seeds, "aborted": []},
            "oracle": {"seeds": [{"days": [dict(day, errors=0)]}], "aborted": []},
        }
    }


def test_failed_calls_are_said_at_the_end_and_exit_1(tmp_path: Path, monkeypatch) -> None:
    import clients.auction.plot
    import clients.auction.report
    import clients.auction.run

    monkeypatch.setattr(clients.auction.run, "run_auction", lambda config: report_with_errors(120))
    monkeypatch.setattr(clients.auction.plot, "plot_report", lambda report, path: None)
    monkeypatch.setattr(clients.auction.report, "table", lambda report: "")
    result = CliRunner().invoke(app, ["auction", "--quick", "--out", str(tmp_path / "a.json")])
    assert result.exit_code == 1, result.output
    assert (
        "WARNING: pipeline debiased: 120 of 600 scoring calls failed (20.0%), most often 'ConnectError' (120); its "
        "totals count each as an auction without ads, its paired comparisons leave out the 1 seed-day(s) with "
        "failures: see the service's log and run again"
    ) in result.output
    assert scoring_warnings(report_with_errors(0)) == []


def test_a_day_scored_by_versions_it_did_not_load_is_said_and_exits_1(tmp_path: Path, monkeypatch) -> None:
    """A reload by someone else mid-run was kept in ``stale_versions`` and never shown, exit 0."""
    import clients.auction.plot
    import clients.auction.report
    import clients.auction.run

    report = report_with_errors(0)
    report["pipelines"]["debiased"]["seeds"][0] |= {"seed": 0}
    for number, day in enumerate(report["pipelines"]["debiased"]["seeds"][0]["days"]):
        day |= {"day": number, "stale_versions": {"ctr": [2, 3]} if number == 1 else {}}
    monkeypatch.setattr(clients.auction.run, "run_auction", lambda config: report)
    monkeypatch.setattr(clients.auction.plot, "plot_report", lambda report, path: None)
    monkeypatch.setattr(clients.auction.report, "table", lambda report: "")
    result = CliRunner().invoke(app, ["auction", "--quick", "--out", str(tmp_path / "a.json")])
    assert result.exit_code == 1, result.output
    line = (
        "WARNING: pipeline debiased, seed 0, day 1: scored by versions {'ctr': [2, 3]}, not only the ones loaded "
        "before the day (a reload by someone else?): the day's figures mix models"
    )
    assert line in result.output and stale_warnings(report) == [line]


class Serving:
    """A running service's /v1/models, through the synchronous client."""

    def __init__(self, models: list[ModelStatus]) -> None:
        self.served = models

    def __enter__(self) -> Serving:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def models(self) -> list[ModelStatus]:
        return self.served


def test_the_models_a_running_service_served_are_in_the_report(tmp_path: Path, monkeypatch, caplog) -> None:
    """Under --url the config said ctr + esmm while the service served ctr_naive + esmm_blind; now each role's
    served name, version, sha256 and regime are recorded, and a position-blind model in the debiased pipeline
    is warned."""
    import clients.auction.run as run
    from tests.support.auction_day import day

    served = [
        ModelStatus(
            name="ctr_naive", roles=["ctr"], ready=True, version=2, sha256="ab" * 32, position={"regime": "logged"}
        ),
        ModelStatus(
            name="esmm", roles=["ctcvr"], ready=True, version=3, sha256="cd" * 32, position={"regime": "slot1"}
        ),
    ]

    monkeypatch.setattr(run, "require_ready", lambda url: None)
    monkeypatch.setattr(run, "ScoringClient", lambda url: Serving(served))
    monkeypatch.setattr(run, "_run_pipeline", lambda done, *args: done.days.append(day(1.0)))
    config = run.AuctionConfig(
        days=1, seeds=1, pipelines=("debiased",), url="http://127.0.0.1:9", work_dir=tmp_path, progress=False
    )
    with caplog.at_level(logging.WARNING, logger="clients.auction.run"):
        report = run.run_auction(config)
    assert report["served_models"] == {
        "ctr": {"name": "ctr_naive", "version": 2, "sha256": "ab" * 32, "regime": "logged"},
        "ctcvr": {"name": "esmm", "version": 3, "sha256": "cd" * 32, "regime": "slot1"},
    }
    assert [r.getMessage() for r in caplog.records] == [
        "the debiased pipeline's ctr model ctr_naive version 2 is in the 'logged' position regime "
        "(position-blind): its figures are not a debiased model's; serve a slot1 model or name the pipeline naive"
    ]


def test_a_reserve_above_every_bid_stops_the_pipeline_before_training(
    world: World, tmp_path: Path, monkeypatch
) -> None:
    """It ended in "impression log .../window_day0.parquet has no rows" from the trainer, after a day's work."""
    import clients.auction.run as run
    from clients.auction.pipelines import oracle_scores

    class Truthful(Refusing):
        async def score(self, context: dict, candidates: list) -> None:
            raise AssertionError("scored by the truth here")

    async def truth(client, world, requests, concurrency, progress):  # the service's scores, stood in for
        return oracle_scores(world, requests)

    class Untrainable:
        def __init__(self) -> None:
            self.names, self.timings = {"ctr": "ctr"}, run.Timings()

        def train_window(self, logs: list[Path], label: str) -> dict[str, int]:
            raise AssertionError("trained on a window without impressions")

    monkeypatch.setattr(run, "AsyncScoringClient", lambda url, max_connections: Truthful())
    monkeypatch.setattr(run, "service_scores", truth)
    config = run.AuctionConfig(
        days=2, requests_per_day=30, seeds=1, train_days=1, pipelines=("debiased",), reserve=1e9, progress=False
    )
    service = run.RunningService(url="http://127.0.0.1:9", token="", log=tmp_path / "service.log")
    advertisers = config.advertisers(world, 0)
    done = run.PipelineRun(seed=0)
    asyncio.run(run._days(done, "debiased", world, advertisers, config, tmp_path, None, Untrainable(), service))
    assert [d["impressions"] for d in done.days] == [0]
    assert done.aborted == "no ad cleared the reserve 1000000000.0 on day 0: nothing to train on"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--out", "r.png"], "--out r.png: the plot is written to its .png sibling, itself; name a .json report"),
        (["--reserve", "inf"], "--reserve must be a finite price per click >= 0, got inf"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_any_work(tmp_path: Path, monkeypatch, args, said) -> None:
    """--out r.png wrote the plot over the report; --reserve inf was taken and no ad could show."""
    import clients.auction.run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(clients.auction.run, "run_auction", lambda config: pytest.fail("ran"))
    result = CliRunner().invoke(app, ["auction", "--quick", *args])
    assert isinstance(result.exception, ValueError) and str(result.exception) == said


def test_a_served_model_without_its_config_in_the_repository_is_said_before_day_0(tmp_path: Path, monkeypatch):
    """``--repository DIR`` without esmm/config.toml was found after a day's scoring and a training."""
    import clients.auction.run as run

    (tmp_path / "models" / "ctr").mkdir(parents=True)
    (tmp_path / "models" / "ctr" / "config.toml").write_text('kind = "ctr"\n', encoding="utf-8")
    served = [ModelStatus(name=n, roles=[r], ready=True, version=1) for n, r in (("ctr", "ctr"), ("esmm", "ctcvr"))]
    monkeypatch.setattr(run, "require_ready", lambda url: None)
    monkeypatch.setattr(run, "require_admin", lambda url, token: None)
    monkeypatch.setattr(run, "ScoringClient", lambda url: Serving(served))
    monkeypatch.setattr(run, "_run_pipeline", lambda *args: pytest.fail("day 0 began"))
    config = run.AuctionConfig(
        seeds=1, pipelines=("debiased",), url="http://127.0.0.1:9", repository=tmp_path / "models",
        admin_token="t" * 20, work_dir=tmp_path / "w", progress=False,
    )  # fmt: skip
    with pytest.raises(
        FileNotFoundError, match=r"^--repository .*models: the service at --url serves 'esmm'"
    ) as raised:
        run.run_auction(config)
    assert f"expected {tmp_path / 'models' / 'esmm' / 'config.toml'}" in str(raised.value)


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), SystemExit(143)])
def test_an_interrupted_run_says_that_no_report_was_written(tmp_path: Path, monkeypatch, stop: BaseException) -> None:
    """Ctrl-C or SIGTERM (SystemExit 143) lost every finished day without a word: the last line was the day's INFO."""
    import clients.auction.run

    def interrupted(config) -> None:
        raise stop

    monkeypatch.setattr(clients.auction.run, "run_auction", interrupted)
    out = tmp_path / "a.json"
    result = CliRunner().invoke(app, ["auction", "--quick", "--out", str(out)])
    assert f"interrupted: no report written to {out}" in result.output and not out.exists()


def test_batch_size_with_a_running_service_s_repository_is_refused(tmp_path: Path) -> None:
    """With --url and --repository the service's own configs train: --batch-size 64 was ignored (the log said
    "trains for only 2 optimiser steps" at the config's 2048) and recorded in the report as used."""
    arguments = ["auction", "--quick", "--url", "http://127.0.0.1:9", "--repository", str(tmp_path), "--admin-token"]
    result = CliRunner().invoke(app, [*arguments, "t", "--batch-size", "64", "--out", str(tmp_path / "a.json")])
    assert isinstance(result.exception, ValueError)  # the command line's entry point: "error: ..." and exit 2
    assert str(result.exception).startswith("--batch-size: with --url and --repository the service's own config")


def test_an_exit_that_is_no_signal_is_not_written_up_as_sigterm(tmp_path: Path, monkeypatch) -> None:
    """Every SystemExit was taken for SIGTERM's (cli/signals.py raises SystemExit(143)): a library's sys.exit(3)
    after a day had run wrote a partial report "interrupted by SIGTERM". It goes on up as it came."""
    import clients.auction.run as run
    from tests.support.auction_day import day

    def pipeline(done, *args) -> None:
        if done.seed == 1:
            sys.exit(3)
        done.days.append(day(1.0))

    monkeypatch.setattr(run, "_run_pipeline", pipeline)
    config = run.AuctionConfig(days=1, seeds=2, pipelines=("oracle",), work_dir=tmp_path, progress=False)
    with pytest.raises(SystemExit) as stopped:
        run.run_auction(config)
    assert stopped.value.code == 3
    monkeypatch.setattr(
        run, "_run_pipeline", lambda done, *args: sys.exit(143) if done.seed else done.days.append(day(1.0))
    )
    with pytest.raises(run.Interrupted) as interrupted:
        run.run_auction(config)
    assert interrupted.value.report["partial"]["interrupted_by"] == "SIGTERM"


def test_an_error_in_a_later_seed_writes_the_seeds_that_ended_before_it(tmp_path: Path, monkeypatch) -> None:
    """A trainer, a service or a retriever that failed in a run's later seed raised past the report: every seed
    before it was lost (a 6-seed run's half hour for an error in its last). The partial report of the days that
    ended is written, marked with the error, and the error then ends the command as it would have."""
    import clients.auction.run as run

    scored = []

    def failing_in_seed_1(world: World, requests) -> object:
        scored.append(requests.day)
        if len(scored) > 1:  # one day a seed: the second call is seed 1's
            raise RuntimeError("retrieval: /v1/similarity failed for request 3 of day 0: ConnectError\nmore")
        return real(world, requests)

    real = run.oracle_scores
    monkeypatch.setattr(run, "oracle_scores", failing_in_seed_1)
    out = tmp_path / "a.json"
    arguments = ["--pipelines", "oracle", "--seeds", "2", "--days", "1", "--requests-per-day", "200"]
    result = CliRunner().invoke(app, ["auction", *arguments, "--work-dir", str(tmp_path / "w"), "--out", str(out)])
    assert isinstance(result.exception, RuntimeError)  # a bug's traceback stays: the report is written first
    said = "RuntimeError: retrieval: /v1/similarity failed for request 3 of day 0: ConnectError"
    assert json.loads(out.read_text())["partial"] == {
        "interrupted_by": "error",
        "error": said,
        "days_completed": {"oracle": {"0": 1}},
        "seeds_finished": [0],
        "seeds_unfinished": [1],
    }
    assert f"stopped by {said}: wrote the partial report" in result.output and out.with_suffix(".png").is_file()
    assert "`ctr auction --first-seed 1 --seeds 1`" in result.output
