"""The exploration slice (``ctr auction --explore SHARE``, clients/auction/explore.py): which requests (the share,
the same for every pipeline, a stream of its own), what a slice request shows (the random pipeline's uniform order)
and what the others show (GSP's), the propensities logged, the day's slice and GSP figures, ``--explore 0`` as a run
without the flag, and the values refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clients.auction.advertisers import Advertisers
from clients.auction.day import DayOutcome, run_day
from clients.auction.explore import GSP_SLOT_MEANS, GSP_SUMS, SLICE_SUMS, check_explore, explore_lines, slice_rows
from clients.auction.pipelines import oracle_scores
from clients.auction.report import table
from clients.auction.traffic import draw_day
from clients.auction.uniform import uniform_draws
from tests.support.ctr_in_process import ctr_in_process
from tests.support.ctr_process import ctr_without, one_error_line
from tests.support.quick_auction import outcomes, quick_auction
from training.world import World, WorldConfig

RESERVE = 0.2
REQUESTS = 20_000


def test_the_slice_holds_the_share_of_the_requests_by_a_stream_of_its_own() -> None:
    """Each request is in with probability 0.1: the count is binomial, its standard deviation sqrt(R p (1 - p)) = 42
    over 20,000 requests; within 4 of them (these draws are fixed by their key: the test is deterministic)."""
    rows = slice_rows(0.1, 0, 3, 2, REQUESTS)
    assert abs(rows.sum() - 0.1 * REQUESTS) < 4 * math.sqrt(REQUESTS * 0.1 * 0.9), rows.sum()
    assert np.array_equal(rows, slice_rows(0.1, 0, 3, 2, REQUESTS))  # any pipeline, any run of the seed: the same
    assert not np.array_equal(rows, slice_rows(0.1, 0, 3, 3, REQUESTS))  # another day, other requests
    assert not np.array_equal(rows, slice_rows(0.1, 0, 4, 2, REQUESTS))  # another seed
    # not the uniform order's numbers (stream 18) nor the traffic's: a stream of its own
    assert not np.array_equal(rows, uniform_draws(0, 3, 2, (REQUESTS, 1))[:, 0] < 0.1)
    assert slice_rows(0.0, 0, 3, 2, REQUESTS) is None  # nothing drawn: the run without a slice
    assert slice_rows(0.5, 0, 3, 2, REQUESTS).mean() == pytest.approx(0.5, abs=0.015)


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5, math.nan, math.inf])
def test_a_share_outside_zero_to_one_is_refused_naming_the_flag(share: float) -> None:
    with pytest.raises(ValueError, match=r"--explore must be a share of each day's requests, 0 <= SHARE < 1"):
        check_explore(share)


def test_a_slice_without_a_pipeline_that_explores_is_refused() -> None:
    """`--explore 0.1 --pipelines oracle` ran the run without a slice, and its table printed "exploration slice"
    over nothing."""
    with pytest.raises(ValueError, match=r"^--explore 0.1 slices the traffic of the pipelines scored from their own "):
        check_explore(0.1, ["oracle", "random"])
    assert check_explore(0.0, ["oracle"]) == 0.0 and check_explore(0.1, ["oracle", "constant"]) == 0.1
    assert check_explore(0.1, ["oracle", "nonsense"]) == 0.1  # an unknown name is the pipelines' check to say


@pytest.mark.parametrize("value", ["1", "-0.5", "nan"])
def test_the_cli_refuses_a_bad_share_before_importing_torch(tmp_path: Path, value: str) -> None:
    done = ctr_without("torch", "auction", "--explore", value, "--out", str(tmp_path / "a.json"), cwd=tmp_path)
    assert one_error_line(done).startswith("error: --explore must be a share of each day's requests"), done.stderr
    assert not (tmp_path / "a.json").exists()


@pytest.fixture(scope="module")
def days() -> dict[str, tuple[np.ndarray | None, DayOutcome]]:
    """One day of 20,000 requests scored by the truth, run three ways: GSP, the uniform order on every request, and
    GSP with a 30 % slice ordered uniformly."""
    world = World(WorldConfig(n_users=2000, n_ads=200, n_advertisers=50))
    advertisers = Advertisers.draw(world, np.random.default_rng(0))
    requests = draw_day(world, 0, 0, REQUESTS)
    scores = oracle_scores(world, requests)
    order = uniform_draws(world.config.seed, 0, 0, requests.ads.shape)
    rows = slice_rows(0.3, world.config.seed, 0, 0, REQUESTS)

    def run(uniform: np.ndarray | None, sliced: np.ndarray | None) -> DayOutcome:
        return run_day(world, advertisers, requests, scores, RESERVE, None, uniform, sliced)

    return {"gsp": (None, run(None, None)), "uniform": (None, run(order, None)), "slice": (rows, run(order, rows))}


def _rows_of(outcome: DayOutcome, requests: set[str], table_name: str = "displayed") -> list[dict]:
    table = getattr(outcome, table_name)
    ids = table.column("request_id").to_pylist()
    return [row for row, i in zip(table.to_pylist(), ids, strict=True) if i in requests]


def test_slice_requests_show_the_uniform_order_and_the_others_gsp_with_their_propensities(days) -> None:
    rows, sliced = days["slice"]
    ids = {f"d0-r{r}" for r in range(REQUESTS)}
    explored = {f"d0-r{r}" for r in np.nonzero(rows)[0].tolist()}
    for name, requests in (("uniform", explored), ("gsp", ids - explored)):  # every column, bid and price included
        for kind in ("displayed", "non_displayed"):
            assert _rows_of(sliced, requests, kind) == _rows_of(days[name][1], requests, kind), (name, kind)
    propensity = {i: p for i, p in zip(*(sliced.displayed.column(c).to_pylist() for c in ("request_id", "propensity")),
                                       strict=True)}  # fmt: skip
    assert all(propensity[i] == 1 for i in ids - explored if i in propensity)  # GSP's rows keep 1
    assert all(propensity[i] < 1 for i in explored if i in propensity)  # 1 / eligible: several eligible each


def test_the_day_records_its_slice_and_what_gsp_made_of_the_same_requests(days) -> None:
    rows, sliced = days["slice"]
    gsp, uniform = days["gsp"][1].metrics, days["uniform"][1].metrics
    metrics = sliced.metrics
    assert metrics["slice_requests"] == int(rows.sum())
    for key in ("impressions", "revenue", "welfare", "clicks", "conversions"):
        assert metrics[f"gsp_{key}"] == pytest.approx(gsp[key])  # the day had GSP run on the slice too
    for key in ("impressions", "revenue", "clicks", "conversions"):  # welfare is not in the log
        # the slice's own figures are the uniform day's on its requests; the rest's (the day's minus the slice's)
        # GSP's on theirs
        rest = metrics[key] - metrics[f"slice_{key}"]
        assert metrics[f"slice_{key}"] == pytest.approx(_sum_over(days["uniform"][1], rows, key))
        assert rest == pytest.approx(_sum_over(days["gsp"][1], ~rows, key))
    assert metrics["slice_revenue"] == pytest.approx(RESERVE * metrics["slice_clicks"])  # the reserve per click
    assert metrics["gsp_pctr_over_true_by_slot"] == gsp["pctr_over_true_by_slot"]
    assert metrics["gsp_slot_pctr_over_true_by_slot"] is None  # no slot ratios given, none to calibrate by
    assert set(SLICE_SUMS) | set(GSP_SUMS) | set(GSP_SLOT_MEANS) <= set(metrics)
    assert not any(key.startswith(("slice_", "gsp_")) for key in (*gsp, *uniform))  # a day without a slice: none


def _sum_over(outcome: DayOutcome, rows: np.ndarray, key: str) -> float:
    """A day's figure ``key`` over the requests ``rows`` from its impression log (revenue: its prices of clicks)."""
    displayed = outcome.displayed
    request = np.array([int(i.split("-r")[1]) for i in displayed.column("request_id").to_pylist()])
    pick = rows[request]
    click = displayed.column("click").to_numpy().astype(bool)
    if key == "impressions":
        return float(pick.sum())
    if key == "clicks":
        return float((pick & click).sum())
    if key == "conversions":
        return float((pick & displayed.column("conversion").to_numpy().astype(bool)).sum())
    assert key == "revenue", key
    return float(displayed.column("price").to_numpy()[pick & click].astype(np.float64).sum())


def test_explore_zero_is_the_run_without_the_flag_and_a_slice_moves_the_explorers_only(tmp_path: Path) -> None:
    pipelines = ("--pipelines", "random,constant,oracle")
    without = quick_auction(tmp_path, "without", *pipelines)
    zero = quick_auction(tmp_path, "zero", *pipelines, "--explore", "0")
    sliced = quick_auction(tmp_path, "sliced", *pipelines, "--explore", "0.3")
    assert "explore" not in zero["config"]
    assert {k: v for k, v in zero["config"].items() if k != "work_dir"} == {
        k: v for k, v in without["config"].items() if k != "work_dir"
    }
    for name in ("random", "constant", "oracle"):
        assert outcomes(zero, name) == outcomes(without, name)  # every day to the cent
    assert sliced["config"]["explore"] == 0.3
    for name in ("random", "oracle"):  # neither explores: random is uniform already, the oracle reads no log
        assert outcomes(sliced, name) == outcomes(without, name)
    constant = sliced["pipelines"]["constant"]
    day0, before = constant["seeds"][0]["days"][0], without["pipelines"]["constant"]["seeds"][0]["days"][0]
    assert day0["gsp_welfare"] == before["welfare"] and day0["gsp_clicks"] == before["clicks"]  # day 0: same rates
    assert day0["welfare"] != before["welfare"]
    assert 0.2 < constant["total"]["slice_requests"] / constant["total"]["requests"] < 0.4
    assert "slice_requests_ci95" in constant["total"]  # the slice's totals, summed per seed, as the day's others
    logs = tmp_path / "sliced" / "seed0" / "constant" / "logs" / "day0.parquet"
    displayed = pq.read_table(logs)
    explored = {f"d0-r{r}" for r in np.nonzero(slice_rows(0.3, 0, 0, 0, 300))[0].tolist()}
    in_slice = np.array([i in explored for i in displayed.column("request_id").to_pylist()])
    propensity = displayed.column("propensity").to_numpy()
    assert (propensity[~in_slice] == 1).all() and (propensity[in_slice] < 1).all()
    assert "exploration slice (30% of the requests of constant; rest" in table(sliced)  # the exploring that ran
    assert "exploration slice" not in table(without)


def test_the_table_s_slice_line_says_what_gsp_would_have_made_of_the_slice_and_the_rest() -> None:
    """By hand: a day's welfare 1,000, its slice's 100, and 1,050 had GSP run on the slice too: GSP would have made
    1,050 - 1,000 + 100 = 150 of the slice, and the rest made 1,000 - 100 = 900; a pipeline without a slice
    (the oracle) has no line."""
    total = {"requests": 1000, "slice_requests": 200}
    for key, (whole, part, gsp) in {
        "welfare": (1000, 100, 1050),
        "revenue": (500, 40, 520),
        "clicks": (90, 10, 95),
        "conversions": (9, 1, 8),
    }.items():
        total |= {key: whole, f"slice_{key}": part, f"gsp_{key}": gsp}
    report = {"config": {"explore": 0.2}, "pipelines": {"naive": {"total": total}, "oracle": {"total": {}}}}
    assert explore_lines(report) == [
        "\nexploration slice (20% of the requests of naive; rest = total - slice):",
        "naive: slice of 200 requests: welfare 100 (GSP 150, rest 900), revenue 40 (GSP 60, rest 460), clicks 10 "
        "(GSP 15, rest 80), conversions 1 (GSP 0, rest 8)",
    ]
    assert explore_lines({"config": {}, "pipelines": {"naive": {"total": total}}}) == []


def test_parts_with_another_share_do_not_merge(tmp_path: Path, monkeypatch, capsys) -> None:
    a = tmp_path / "a.json"
    quick_auction(tmp_path, "a", "--pipelines", "constant,oracle", "--explore", "0.1")
    b = tmp_path / "b.json"
    quick_auction(tmp_path, "b", "--pipelines", "constant,oracle", "--first-seed", "1")
    out = tmp_path / "m.json"
    refused = ctr_in_process(monkeypatch, capsys, "auction-merge", str(a), str(b), "--out", str(out))
    assert refused.returncode == 2 and "explore 'not recorded' (not 0.1)" in refused.stderr, refused.stderr
    assert not out.exists()


def test_the_pairing_script_splits_the_net_difference_into_the_slice_s_cost_and_the_models_benefit(
    tmp_path: Path,
) -> None:
    from reports.auction_explore import main

    pipelines = ("--pipelines", "constant,oracle", "--days", "3")
    quick_auction(tmp_path, "control", *pipelines)
    quick_auction(tmp_path, "run", *pipelines, "--explore", "0.3")
    out = tmp_path / "paired.json"
    paths = ["--control", str(tmp_path / "control.json"), "--variant", str(tmp_path / "run.json")]
    main([*paths, "--out", str(out), "--work-dir", str(tmp_path / "run")])
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["net"]["oracle"]["identical_days"] == 3 and "oracle" not in report["split"]
    constant = report["split"]["constant"]
    assert constant["day0_identical"] == 1  # day 0 under GSP: the control's day, the same rates
    for key in ("welfare", "revenue", "clicks", "conversions"):  # net = cost + benefit, seed by seed
        net = report["net"]["constant"][key]["per_seed"]
        assert net == pytest.approx(np.add(constant[f"cost_{key}"]["per_seed"], constant[f"benefit_{key}"]["per_seed"]))
    assert constant["cost_clicks"]["mean"] != 0
    assert list(constant["per_slot_days_1_on"]) == ["pctr_over_true_by_slot"]  # no slot ratios: no slot calibration
    first, second = constant["window_slice_share"]  # a window of history and day 0, then days 0 and 1
    assert 0.1 < first < 0.2 and 0.2 < second < 0.4
    rows = report["window_rows"]["constant"]  # the logs of days 0 and 1, which the retrainings read
    days = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))["pipelines"]["constant"]["seeds"][0]["days"]
    assert sum(rows["slice"]["impressions_by_slot"]) == sum(d["slice_impressions"] for d in days[:2])
    assert sum(rows["rest"]["impressions_by_slot"]) == sum(d["impressions"] - d["slice_impressions"] for d in days[:2])
    assert rows["slice"]["logged_ctr_over_slot1"][0] == 1
