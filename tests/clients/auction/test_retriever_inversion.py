"""reports/retriever_inversion.py: its offline retraining of a retrained retriever's window is the model the auction
served (the same weights, the same retrieval figures on the day's pools), and its ablations change the one thing
they name. A real ``ctr auction --retrieval esam --retrain-retrieval`` run (one retraining, after day 0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from reports.auction_retrieval_daily import seen_shares
from reports.retriever_inversion import (
    Case,
    PoolEncoding,
    doubled,
    halved,
    initial_model,
    statistics_of,
    trained_fresh,
    unseen_ids_at_seen_mean,
    window_id_rows,
    windows,
)
from training.fitting.checkpoint import Checkpoint
from training.training_files import checkpoint_path

CONFIGS = Path(__file__).resolve().parents[3] / "models"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A run's work folder and report: 2 days, the retriever retrained on day 0 for day 1."""
    tmp_path = tmp_path_factory.mktemp("inversion")
    out = tmp_path / "daily.json"
    result = CliRunner().invoke(
        app,
        ["auction", "--quick", "--requests-per-day", "60", "--retrieval", "esam", "--pool", "20", "--pipelines",
         "oracle", "--retrain-retrieval", "--configs", str(CONFIGS), "--out", str(out), "--work-dir",
         str(tmp_path / "work"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp_path, json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def retrained(run: tuple[Path, dict]) -> tuple[Case, Checkpoint]:
    tmp_path, report = run
    case = Case(tmp_path / "work", report, "oracle", 0, 1)
    return case, trained_fresh(case.world, case.window(1), CONFIGS, tmp_path / "again")


def test_the_retraining_is_the_version_that_served_the_day(run: tuple[Path, dict], retrained: tuple) -> None:
    tmp_path, report = run
    case, checkpoint = retrained
    left = Checkpoint.load(checkpoint_path(tmp_path / "work" / "seed0" / "oracle" / "retrieval" / "work", "esam"))
    assert left.state_dict.keys() == checkpoint.state_dict.keys()
    assert all(torch.equal(left.state_dict[k], checkpoint.state_dict[k]) for k in left.state_dict)
    figures = case.figures(PoolEncoding(case.world, case.pool, checkpoint.spec).scores(checkpoint.build()))
    assert {k: figures[k] for k in case.reported} == case.reported  # the service's ONNX towers chose the same ads
    [seen] = seen_shares(tmp_path / "work", report, "oracle")  # day 1, as the daily comparison measures it
    assert figures["retrieved_seen_share"] == pytest.approx(seen["retrieved_seen_share"])
    assert figures["pool_seen_share"] == pytest.approx(seen["pool_seen_share"])


def test_unseen_id_rows_take_the_seen_rows_mean_and_nothing_else_changes(retrained: tuple) -> None:
    case, checkpoint = retrained
    model = checkpoint.build()
    encoding = PoolEncoding(case.world, case.pool, checkpoint.spec)
    seen = window_id_rows(case, checkpoint.spec)
    changed = unseen_ids_at_seen_mean(model, seen, encoding.id_rows)
    before, after = (m.item_tower.embedding.table.weight.detach() for m in (model, changed))
    for name, rows in seen.items():
        low, high = encoding.id_rows[name]
        assert 0 < rows.size < high - low and ((rows >= low) & (rows < high)).all()
        unseen = np.setdiff1d(np.arange(low, high), rows)
        assert torch.equal(after[rows], before[rows])
        assert torch.allclose(after[unseen], before[rows].mean(0).expand(unseen.size, -1))
    other = np.setdiff1d(np.arange(before.shape[0]), np.arange(*encoding.id_rows["ad_id"]))
    other = np.setdiff1d(other, np.arange(*encoding.id_rows["advertiser_id"]))
    assert torch.equal(after[other], before[other])  # the category rows, untouched
    assert not torch.equal(after, before)
    start = initial_model(checkpoint)  # what training started from: the unseen ad rows never moved
    unseen_ads = np.setdiff1d(np.arange(*encoding.id_rows["ad_id"]), seen["ad_id"])
    assert torch.equal(start.item_tower.embedding.table.weight.detach()[unseen_ads], before[unseen_ads])


def test_statistics_of_trains_on_the_given_statistics(run: tuple[Path, dict], retrained: tuple) -> None:
    tmp_path, _ = run
    case, checkpoint = retrained
    first = Checkpoint.load(checkpoint_path(tmp_path / "work" / "seed0" / "retrieval" / "work", "esam"))
    assert first.spec.stats != checkpoint.spec.stats  # the history's and the window's
    with statistics_of(first.spec):
        fixed = trained_fresh(case.world, case.window(1), CONFIGS, tmp_path / "fixed")
    assert fixed.spec.stats == first.spec.stats


def test_windows_read_the_displayed_rows_of_the_serving_window_and_of_the_history(retrained: tuple) -> None:
    case, _ = retrained
    labels = windows(case)
    for name, file in (("window", case.window(1)[0][0]), ("history", case.window(1, keep_history=True)[0][0])):
        table = pq.read_table(file, columns=["ad_quality", "click"])
        quality, click = (table.column(c).to_numpy().astype(np.float64) for c in ("ad_quality", "click"))
        assert labels[name]["rows"] == table.num_rows
        assert labels[name]["click_rate"] == pytest.approx(click.mean())
        assert labels[name]["quality_mean"] == pytest.approx(quality.mean())
    assert case.window(1)[0][0].parent.name == "logs"  # the pipeline's own day 0, not the history's day -1
    assert case.window(1, keep_history=True)[0][0].parent.name == "history"


def test_doubled_and_halved_keep_each_request_whole_in_the_order_logged() -> None:
    """``rows_or_ads``' two windows: each request twice, its copy right after it (so the latest tenth of the
    requests, the validation tail, is the same requests); every other request, whole."""
    table = pa.table({"request_id": ["b", "b", "a", "c", "c"], "click": [1, 0, 0, 1, 1]})
    twice = doubled(table)
    assert twice.column("request_id").to_pylist() == ["b", "b", "b/copy", "b/copy", "a", "a/copy", "c", "c", "c/copy",
                                                      "c/copy"]  # fmt: skip
    assert twice.column("click").to_pylist() == [1, 0, 1, 0, 0, 0, 1, 1, 1, 1]
    assert halved(table).to_pydict() == {"request_id": ["b", "b", "c", "c"], "click": [1, 0, 1, 1]}
