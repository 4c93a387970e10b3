"""``ctr auction-merge``: the reports of a run split by ``--first-seed`` joined into the report one run over all
their seeds writes (its per-seed records, totals, intervals and paired comparisons); parts that are not one
run's refused in one line naming the file, nothing written."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from clients.auction.merge import merge_reports
from clients.auction.report import summarise
from clients.auction.run import AuctionConfig, PipelineRun, config_digests, partial_record
from common.features import NumericStats
from common.finite_json import finite
from tests.support.auction_day import day
from tests.support.checkout import ROOT
from tests.support.ctr_in_process import ctr_in_process
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm

# the settings every synthetic part shares (a real report's config has these and more)
SETTINGS = {
    "days": 2, "requests_per_day": 30, "slots": 2, "candidates": 10, "pipelines": ["debiased", "oracle"],
    "train_days": 1, "batch_size": 128, "reserve": 0.2, "work_dir": "artifacts/auction",
}  # fmt: skip
# what differs between two runs of the same seeds: wall seconds and the service's latencies
TIMINGS = {"timings", "scoring_seconds", "p50_ms", "p99_ms", "p50_ms_ci95", "p99_ms_ci95"}


def seed_runs(seed: int, dead: bool = False) -> dict[str, PipelineRun]:
    """Both pipelines' two days of ``seed``; ``dead``: debiased's day 1 a dead service's (every call failed, no ad
    shown: its ratios NaN, written null), which the paired comparisons leave out."""
    debiased = [day(100.0 + 7 * seed * seed + d) | {"revenue": 40.0 - seed + d, "requests": 30} for d in range(2)]
    if dead:
        debiased[1] |= {"errors": 30, "pcvr_over_true": math.nan, "price_over_bid": math.nan}
    oracle = [day(150.0 + 3 * seed + 2 * d) | {"revenue": 45.0 + seed} for d in range(2)]
    return {"debiased": PipelineRun(seed=seed, days=debiased), "oracle": PipelineRun(seed=seed, days=oracle)}


def report_of(seeds: list[int], dead: tuple[int, ...] = (), **more: object) -> dict:
    """The report a run of ``seeds`` writes (summarise, then JSON's nulls for NaN), a dead service's day in the
    ``dead`` seeds."""
    runs: dict[str, list[PipelineRun]] = {"debiased": [], "oracle": []}
    for seed in seeds:
        for name, run in seed_runs(seed, seed in dead).items():
            runs[name].append(run)
    config = SETTINGS | {"first_seed": seeds[0], "seeds": len(seeds)}
    report = summarise(runs, config, 1.0) | {"model_configs": {"debiased": {"esmm": "e" * 64}}}
    return json.loads(json.dumps(finite(report | more)))


def write(path: Path, report: dict) -> Path:
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def summaries(report: dict) -> dict:
    """What a merge must give as one run does: the per-seed records, days, totals and comparisons."""
    return {key: report[key] for key in ("seeds_run", "pipelines", "comparisons")}


def test_merged_parts_give_one_run_s_records_totals_and_comparisons(tmp_path: Path, monkeypatch, capsys) -> None:
    """Three parts of one seed each had no interval at all; merged (two, then that merge with the third: a merged
    report merges again), the report is the three-seed run's, to the bit, a dead service's day left out as there
    (and said, exit 1, as `ctr auction` says it)."""
    a, b, c = (write(tmp_path / f"{name}.json", report_of([seed], dead=(1,))) for seed, name in enumerate("abc"))
    assert json.loads(a.read_text())["comparisons"]["debiased_minus_oracle"]["welfare_ci95"] is None
    first = ctr_in_process(monkeypatch, capsys, "auction-merge", str(a), str(b), "--out", str(tmp_path / "ab.json"))
    assert first.returncode == 1, first.stderr
    out = tmp_path / "abc.json"
    merged = ctr_in_process(monkeypatch, capsys, "auction-merge", str(tmp_path / "ab.json"), str(c), "--out", str(out))
    assert merged.returncode == 1 and "WARNING: pipeline debiased: 30 of 180 scoring calls failed" in merged.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    whole = report_of([0, 1, 2], dead=(1,))
    assert summaries(report) == summaries(whole)
    assert report["comparisons"]["debiased_minus_oracle"]["failed_days_left_out"] == [[], [1], []]
    assert (report["config"]["first_seed"], report["config"]["seeds"]) == (0, 3)
    assert [part["file"] for part in report["merged"]["parts"]] == [str(a), str(b), str(c)]
    assert report["merged"]["seeds_missing"] == [] and report["command"].startswith("ctr auction-merge ")
    assert out.with_suffix(".png").stat().st_size > 0 and f"wrote {out}" in merged.stdout


def test_a_partial_part_gives_the_seeds_it_finished_only_when_allowed(tmp_path: Path, monkeypatch, capsys) -> None:
    """A run of seeds 0..2 stopped in seed 1 (debiased had ended it, oracle had started it): refused as it is;
    with --allow-partial its seed 0 is taken and seed 1 left out, said with the run that does the rest, which
    merged with it gives the whole run's report."""
    runs = {name: [run] for name, run in seed_runs(0).items()}
    runs["debiased"].append(seed_runs(1)["debiased"])
    runs["oracle"].append(PipelineRun(seed=1))  # started, stopped before its first day ended
    config = AuctionConfig(days=2, seeds=3, pipelines=("debiased", "oracle"), progress=False)
    partial = partial_record(runs, config, KeyboardInterrupt())
    assert partial == {
        "interrupted_by": "SIGINT",
        "days_completed": {"debiased": {"0": 2, "1": 2}, "oracle": {"0": 2}},  # seed 1's oracle was listed with 0
        "seeds_finished": [0],
        "seeds_unfinished": [1, 2],
    }
    report = summarise(runs, SETTINGS | {"first_seed": 0, "seeds": 3}, 1.0) | {"partial": partial}
    stopped = write(tmp_path / "stopped.json", json.loads(json.dumps(finite(report))))
    stopped = write(stopped, json.loads(stopped.read_text()) | {"model_configs": {"debiased": {"esmm": "e" * 64}}})
    rest = write(tmp_path / "rest.json", report_of([1, 2]))
    out = tmp_path / "merged.json"
    refused = ctr_in_process(monkeypatch, capsys, "auction-merge", str(stopped), str(rest), "--out", str(out))
    assert refused.returncode == 2 and not out.exists()
    assert f"error: {stopped} is a partial report (interrupted by SIGINT)" in refused.stderr
    merged = ctr_in_process(
        monkeypatch, capsys, "auction-merge", str(stopped), str(rest), "--out", str(out), "--allow-partial"
    )
    assert merged.returncode == 0, merged.stderr
    assert (
        f"{stopped} is partial: took the seeds it finished, left out seeds 1, 2 (unfinished), which "
        "`ctr auction --first-seed 1 --seeds 2` runs again"
    ) in merged.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert summaries(report) == summaries(report_of([0, 1, 2])) and "partial" not in report
    assert [part["seeds"] for part in report["merged"]["parts"]] == [[0], [1, 2]]
    assert report["merged"]["parts"][0]["seeds_left_out"] == [1, 2]


def test_partial_parts_that_finished_no_seed_leave_nothing_to_merge(tmp_path: Path, monkeypatch, capsys) -> None:
    runs = {"debiased": [PipelineRun(seed=4, days=[day(1.0)])], "oracle": []}  # stopped in day 1 of seed 4
    config = AuctionConfig(days=2, seeds=1, first_seed=4, pipelines=("debiased", "oracle"), progress=False)
    report = summarise(runs, SETTINGS | {"first_seed": 4, "seeds": 1}, 1.0)
    report |= {"partial": partial_record(runs, config, SystemExit(143))}
    stopped = write(tmp_path / "stopped.json", json.loads(json.dumps(finite(report))))
    out = tmp_path / "merged.json"
    refused = ctr_in_process(monkeypatch, capsys, "auction-merge", str(stopped), "--allow-partial", "--out", str(out))
    assert refused.returncode == 2 and not out.exists()
    assert f"error: {stopped}: no part holds a finished seed, there is nothing to merge" in refused.stderr


def test_seeds_missing_between_parts_are_merged_and_said(tmp_path: Path, monkeypatch, capsys) -> None:
    """Each seed is an independent draw: seeds 0 and 2 make a report of two seeds, the gap said and recorded."""
    a, c = write(tmp_path / "a.json", report_of([0])), write(tmp_path / "c.json", report_of([2]))
    out = tmp_path / "merged.json"
    merged = ctr_in_process(monkeypatch, capsys, "auction-merge", str(a), str(c), "--out", str(out))
    assert merged.returncode == 0, merged.stderr
    assert "no part holds seed(s) 1: the merged report is over seeds 0, 2" in merged.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["merged"]["seeds_missing"] == [1] and report["seeds_run"] == [0, 2]
    assert summaries(report) == summaries(report_of([0, 2]))


def test_parts_of_other_code_are_merged_and_said(tmp_path: Path, monkeypatch, capsys) -> None:
    code = {"git": {"commit": "1" * 40, "dirty": False}, "packages": {"numpy": "2.4.6"}}
    a = write(tmp_path / "a.json", report_of([0], provenance=code))
    other = code | {"git": {"commit": "2" * 40, "dirty": False}}
    b = write(tmp_path / "b.json", report_of([1], provenance=other))
    merged = ctr_in_process(monkeypatch, capsys, "auction-merge", str(a), str(b), "--out", str(tmp_path / "m.json"))
    assert merged.returncode == 0, merged.stderr
    assert f"{b} ran other code or packages than {a} (its provenance.git or .packages)" in merged.stderr


def test_a_checkout_with_another_model_config_records_other_digests(tmp_path: Path) -> None:
    """Two parts with the same options, on checkouts whose models/esmm/config.toml differ, train other models:
    nothing in their reports told them apart; ``model_configs`` does, which the merge compares."""
    for name in ("ctr", "esmm", "esmm_blind"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.toml").write_bytes((ROOT / "models" / name / "config.toml").read_bytes())
    config = AuctionConfig(model_source=tmp_path, progress=False)
    before = config_digests(config)
    assert set(before) == {"naive", "debiased"} and set(before["debiased"]) == {"ctr", "esmm"}
    esmm = tmp_path / "esmm" / "config.toml"
    esmm.write_text("# a comment changes no model\n" + esmm.read_text())
    assert config_digests(config) == before
    esmm.write_text(esmm.read_text().replace("epochs = 2 ", "epochs = 3 "))
    after = config_digests(config)
    assert after["debiased"]["esmm"] != before["debiased"]["esmm"]
    assert (after["debiased"]["ctr"], after["naive"]) == (before["debiased"]["ctr"], before["naive"])


def other_days(report: dict) -> dict:
    report["config"]["days"] = 3
    return report


def other_model_configs(report: dict) -> dict:
    return report | {"model_configs": {"debiased": {"esmm": "f" * 64}}}


def without_revenue(report: dict) -> dict:
    """The part as older code wrote it: its days without a metric ``summarise`` sums (revenue)."""
    for entry in report["pipelines"].values():
        for record in entry["seeds"]:
            for day_record in record["days"]:
                del day_record["revenue"]
    return report


def scored_through_a_service(report: dict) -> dict:
    """The part as a run with ``--url`` wrote it: where it ran is no setting, but what scored it is."""
    return report | {"config": report["config"] | {"url": "http://127.0.0.1:8000"}}


@pytest.mark.parametrize(
    ("second", "said"),
    [
        (lambda: other_days(report_of([1])), "b.json: not the settings of {a}: days 3 (not 2)"),
        (lambda: other_model_configs(report_of([1])), "b.json: not the settings of {a}: model_configs differ"),
        (lambda: report_of([0, 1]), "b.json: seed 0 is in {a} too"),
        (
            lambda: scored_through_a_service(report_of([1])),
            "b.json: not the settings of {a}: one scored through a running service (--url), the other through "
            "services of its own",
        ),
        (lambda: {"config": {"seeds": 2}, "per_seed": []}, "b.json is not a `ctr auction` report: its config has no"),
        (lambda: report_of([1]) | {"pipelines": {"esmm": {}}}, "b.json is not a `ctr auction` report: pipeline 'esmm'"),
        (
            lambda: without_revenue(report_of([1])),
            "b.json is not a `ctr auction` report: seed 1 of pipeline 'debiased' has days without revenue (a report "
            "of older code: run that part again)",
        ),
        (lambda: "not JSON", "b.json is not a JSON report"),
        (lambda: "[" * 100_000 + "]" * 100_000, "b.json is not a JSON report (nested deeper than a report is)"),
    ],
    ids=[
        "days",
        "model-configs",
        "overlapping-seed",
        "url",
        "other-report",
        "other-pipeline",
        "older-code",
        "not-json",
        "too-deep",
    ],
)
def test_parts_that_are_not_one_run_s_are_refused_naming_the_file(
    tmp_path: Path, monkeypatch, capsys, second: Callable[[], object], said: str
) -> None:
    a = write(tmp_path / "a.json", report_of([0]))
    b = tmp_path / "b.json"
    text = second()
    b.write_text(text if isinstance(text, str) else json.dumps(text), encoding="utf-8")
    out = tmp_path / "merged.json"
    refused = ctr_in_process(monkeypatch, capsys, "auction-merge", str(a), str(b), "--out", str(out))
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"error: {tmp_path}/" + said.format(a=a)), refused.stderr
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_where_the_parts_ran_is_kept_where_alike_and_their_cpu_seconds_summed_where_each_says_them() -> None:
    """A part's ``work_dir`` (where it ran) stands in the merged config only where every part ran there, else null
    (each part's is in merged.parts); the CPU seconds are summed where every part recorded them, left out where one
    did not (a part of before they were recorded)."""
    a, b = report_of([0]), report_of([1])
    a["config"]["work_dir"] = "elsewhere/auction"
    a["seconds"] |= {"cpu_client_and_training": 3.0, "cpu_services": 2.0}
    b["seconds"] |= {"cpu_client_and_training": 4.0}
    merged, _ = merge_reports([(Path("a.json"), a), (Path("b.json"), b)])
    assert merged["config"]["work_dir"] is None
    assert [part["config"]["work_dir"] for part in merged["merged"]["parts"]] == [
        "elsewhere/auction",
        "artifacts/auction",
    ]
    assert (merged["config"]["first_seed"], merged["config"]["seeds"]) == (0, 2)
    assert merged["seconds"]["cpu_client_and_training"] == 7.0 and "cpu_services" not in merged["seconds"]
    alike, _ = merge_reports([(Path("a.json"), report_of([0])), (Path("b.json"), b)])
    assert alike["config"]["work_dir"] == "artifacts/auction"


def test_an_out_that_is_a_part_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    a, b = write(tmp_path / "a.json", report_of([0])), write(tmp_path / "b.json", report_of([1]))
    refused = ctr_in_process(monkeypatch, capsys, "auction-merge", str(a), str(b), "--out", str(b))
    assert refused.returncode == 2 and f"error: --out {b} is one of the parts" in refused.stderr
    assert json.loads(b.read_text())["seeds_run"] == [1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running service of a tiny model that takes the world's features (no training): the debiased pipeline
    is scored through it (--url), beside the oracle, so the parts hold a paired comparison."""
    from training.world import feature_spec

    spec = feature_spec()
    spec = spec.with_stats({f.name: NumericStats(mean=1.0, std=1.0) for f in spec.numeric})
    repository = tmp_path_factory.mktemp("served") / "models"
    publish_tiny_esmm(repository, spec=spec)
    with running_server(repository, repository.parent / "service.log", ctr_model="esmm") as (url, _):
        yield url


def test_two_one_seed_runs_merge_into_the_two_seed_run(served: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """Real runs through the service: seeds 0 and 1 in one run, and as two parts of one seed each, merged."""

    def run(name: str, *seeds: str) -> Path:
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(
            app,
            ["auction", "--quick", "--days", "1", "--requests-per-day", "30", "--pipelines", "debiased,oracle",
             "--url", served, *seeds, "--out", str(out), "--work-dir", str(tmp_path / name), "--no-progress"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return out

    whole = json.loads(run("whole", "--seeds", "2").read_text(encoding="utf-8"))
    parts = [run("seed0"), run("seed1", "--first-seed", "1")]
    out = tmp_path / "merged.json"
    merged = ctr_in_process(monkeypatch, capsys, "auction-merge", *map(str, parts), "--out", str(out))
    assert merged.returncode == 0, merged.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert without_timings(summaries(report)) == without_timings(summaries(whole))
    assert report["comparisons"] == whole["comparisons"]  # no timing in them: equal to the bit
    assert report["comparisons"]["debiased_minus_oracle"]["welfare_ci95"] is not None
    assert report["served_models"] == whole["served_models"]
    settings = {key: value for key, value in whole["config"].items() if key != "work_dir"}
    assert {key: report["config"][key] for key in settings} == settings


def without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items() if key not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value
