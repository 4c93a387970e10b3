"""Retrieval in the auction (``--retrieval esam|first --pool P``): each request's K candidates taken from a pool of P
popularity-drawn ads, by a served ESAM model's ``/v1/similarity`` (trained on the history window, served by a ``ctr
serve`` of its own) or as the pool's first K (the control); shared by every pipeline of a seed. Real runs: a real
ESAM training, a real service on a loopback port, real similarity calls."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from clients.auction.retrieval import RETRIEVAL_FIGURES, retrieval_figures, top_columns
from clients.auction.run import AuctionConfig
from clients.auction.traffic import draw_day
from clients.service_process import answers_200
from tests.support.auction_retrieval import auctioned, esam_top_k
from tests.support.ctr_in_process import ctr_in_process

POOL, REQUESTS = 20, 60


def auction(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    result = CliRunner().invoke(
        app,
        ["auction", "--quick", "--requests-per-day", str(REQUESTS), *args, "--out", str(out), "--work-dir",
         str(tmp_path / name), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8")) | {"output": result.output}


def test_esam_retrieval_auctions_each_pools_top_k_by_the_served_models_similarity(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="clients.auction"):
        report = auction(tmp_path, "esam", "--retrieval", "esam", "--pool", str(POOL), "--pipelines", "oracle")
    assert report["config"]["retrieval"] == "esam" and report["config"]["pool"] == POOL
    assert list(report["model_configs"]) == ["retrieval"] and list(report["model_configs"]["retrieval"]) == ["esam"]
    served = re.search(r"retrieval: (http://127\.0\.0\.1:\d+) serves esam", caplog.text)
    assert served and not answers_200(f"{served.group(1)}/v2/health/live")  # its service was stopped
    seed = tmp_path / "esam" / "seed0"
    repository = seed / "retrieval" / "models"
    assert (seed / "retrieval" / "non_displayed" / "day-1.parquet").is_file()  # the history's other candidates
    said = (seed / "retrieval" / "service.log").read_text()  # a retrieval service (no roles): ready, no ERROR line
    assert " ERROR " not in said and " WARNING " not in said, said  # it said "esmm is not served" twice
    assert (repository / "esam" / "1").is_dir()  # trained on the history, exported
    config = AuctionConfig(**{k: report["config"][k] for k in ("days", "requests_per_day", "train_days")},
                           pipelines=("oracle",), retrieval="esam", pool=POOL)  # fmt: skip
    world = config.world(0)
    for day, figures in enumerate(report["pipelines"]["oracle"]["seeds"][0]["days"]):
        pool = draw_day(world, 0, day, REQUESTS, config.train_days, POOL)
        retrieved = esam_top_k(repository, 1, world, pool, config.candidates)  # loaded as the service does
        auctioned_ads = auctioned(seed / "oracle" / "logs", day)
        same = [auctioned_ads[r] == set(retrieved[r].tolist()) for r in range(REQUESTS)]
        assert np.mean(same) >= 0.95, np.mean(same)  # the service's float32 batches may reorder a near-tie
        first = [auctioned_ads[r] == set(pool.ads[r, : config.candidates].tolist()) for r in range(REQUESTS)]
        assert np.mean(first) < 0.5  # not the pool's first K: the model chose
        assert all(0.0 <= figures[key] <= 1.0 for key in ("retrieval_top_value_share", "retrieval_top_ctr_share"))
    assert "retrieval esam, 10 of 20 ads a request" in report["output"]


def test_first_retrieval_auctions_the_first_k_of_the_same_pool_for_the_requests_of_the_pool_run(
    tmp_path: Path,
) -> None:
    first = auction(tmp_path, "first", "--retrieval", "first", "--pool", str(POOL), "--pipelines", "constant,oracle")
    pool_run = auction(tmp_path, "pool", "--pipelines", "oracle")
    assert not {"retrieval", "pool", "retrain_retrieval"} & set(pool_run["config"])  # the report of before
    assert "retrain_retrieval" not in first["config"]
    assert not (tmp_path / "pool" / "seed0" / "retrieval").exists()
    world = AuctionConfig().world(0)
    for day in range(2):
        pool = draw_day(world, 0, day, REQUESTS, 1, POOL)
        for pipeline in ("constant", "oracle"):  # every pipeline of the seed auctions the same candidates
            ads = auctioned(tmp_path / "first" / "seed0" / pipeline / "logs", day)
            assert all(ads[r] == set(pool.ads[r, :10].tolist()) for r in range(REQUESTS))
        # the same users at the same seconds as the eligible pool's run: only the candidates differ
        users = {
            name: pq.read_table(
                tmp_path / name / "seed0" / "oracle" / "logs" / f"day{day}_non_displayed.parquet",
                columns=["request_id", "user_idx", "ts"],
            ).to_pylist()
            for name in ("first", "pool")
        }
        assert {tuple(r.values()) for r in users["first"]} == {tuple(r.values()) for r in users["pool"]}
    days = first["pipelines"]["oracle"]["seeds"][0]["days"]
    assert [{k: d[k] for k in RETRIEVAL_FIGURES} for d in days] == [
        {k: d[k] for k in RETRIEVAL_FIGURES} for d in first["pipelines"]["constant"]["seeds"][0]["days"]
    ]
    assert first["pipelines"]["oracle"]["total"]["retrieval_top_value_share"] == pytest.approx(
        np.mean([d["retrieval_top_value_share"] for d in days])
    )


def test_retrieval_figures_count_the_pools_true_best_that_the_retrieved_hold() -> None:
    value = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 5.0, 9.0]])
    ctr = np.array([[0.1, 0.4, 0.3, 0.2], [0.1, 0.1, 0.1, 0.1]])
    figures = retrieval_figures(value, ctr, np.array([[0, 2], [2, 3]]))
    # row 0: the top 2 by value are columns 0, 1 (holds 1), by CTR 1, 2 (holds 1); row 1: 3, 2 (both), CTR tie 0, 1
    assert figures["retrieval_top_value_share"] == 0.75
    assert figures["retrieval_top_ctr_share"] == 0.25
    assert figures["retrieval_true_ctr_lift"] == pytest.approx((0.1 + 0.3 + 0.1 + 0.1) / 4 / ctr.mean())
    assert figures["retrieval_true_value_lift"] == pytest.approx((4 + 2 + 5 + 9) / 4 / value.mean())
    assert top_columns(np.array([[0.2, 0.9, 0.5, 0.9]]), 2).tolist() == [[1, 3]]  # in pool order
    assert top_columns(np.array([[0.9, 0.2, 0.95, 0.1]]), 2).tolist() == [[0, 2]]  # not in the scores' order


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--retrieval", "esam", "--pool", "10"], "--pool (10) must exceed --candidates (10)"),
        (["--retrieval", "first", "--pool", "5"], "--pool (5) must exceed --candidates (10)"),
        (["--pool", "50"], "--pool is the P ads a retriever takes the K candidates of"),
        (["--retrieval", "bm25"], "--retrieval must be one of ['pool', 'first', 'esam'], got 'bm25'"),
        (
            ["--retrain-retrieval"],
            "--retrain-retrieval retrains the ESAM retriever on each pipeline's own days: give "
            "it with --retrieval esam (got --retrieval pool)",
        ),
        (["--retrieval", "first", "--retrain-retrieval"], "give it with --retrieval esam (got --retrieval first)"),
        (
            ["--retrieval", "esam", "--retrain-retrieval", "--url", "http://127.0.0.1:9"],
            "--retrain-retrieval trains each pipeline's own retriever, served by the run's own services: not "
            "with --url",
        ),
        (
            ["--retrieval", "esam", "--retrieval-window", "history-kept"],
            "--retrieval-window history-kept is the window each pipeline's retriever retrains on: give it with "
            "--retrain-retrieval",
        ),
        (
            ["--retrieval", "esam", "--retrain-retrieval", "--retrieval-window", "all"],
            "--retrieval-window must be one of ['latest', 'history-kept'], got 'all'",
        ),
        (
            [
                "--retrieval",
                "esam",
                "--retrain-retrieval",
                "--retrieval-window",
                "history-kept",
                "--url",
                "http://127.0.0.1:9",
            ],
            "--retrain-retrieval trains each pipeline's own retriever, served by the run's own services: not "
            "with --url",
        ),
        (
            ["--retrieval", "esam", "--pipelines", "oracle", "--configs", "no_such_models"],
            "no no_such_models/esam/config.toml: --retrieval esam trains its model from it",
        ),
    ],
)
def test_retrieval_settings_that_cannot_run_are_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    out, work = tmp_path / "r.json", tmp_path / "w"
    result = ctr_in_process(
        monkeypatch, capsys, "auction", "--quick", *args, "--out", str(out), "--work-dir", str(work)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr
    assert not work.exists() and not out.exists()
