"""`ctr train esam --logs DISPLAYED --non-displayed OTHER --spec SPEC.toml`: a user's own retrieval logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from common.features import FeatureSpec
from common.repository import CATALOG_EMBEDDINGS, CATALOG_IDS, read_manifest
from tests.support.named_rows import parquet_row
from tests.support.own_retrieval_logs import CONFIG_TOML, write_pair
from training.logs.retrieval_logs import build_log_data, read_candidates
from training.models.esam import ESAM
from training.models.settings.esam import ESAMConfig


def test_requests_become_padded_queries_with_non_displayed_targets(tmp_path: Path) -> None:
    displayed, other, spec = write_pair(tmp_path)
    data = build_log_data(displayed, other, FeatureSpec.from_toml(spec), n_targets=3, seed=0)
    t = data.tensors.tensors
    assert t["item_mask"].shape == t["click"].shape == (40, 3)  # the longest request shows 3 items
    assert t["item_mask"].sum(1).tolist() == [2 + r % 2 for r in range(40)]  # in log order
    assert (t["click"] * (1 - t["item_mask"])).sum() == 0  # padding is never a click
    assert t["target_categorical"].shape[:2] == (40, 3)
    assert data.catalog_id == "sku"
    assert sorted(data.catalog["sku"]) == sorted(f"k{s}" for s in range(30))  # both tables, each item once


def test_padding_changes_no_loss_term() -> None:
    """ESAM's losses on a padded batch equal those on the same batch without the padded items."""
    features = [
        {"name": "q", "kind": "categorical", "side": "context", "buckets": 8},
        {"name": "i", "kind": "categorical", "side": "candidate", "buckets": 8},
    ]
    spec = FeatureSpec.from_dict({"features": features})
    torch.manual_seed(0)
    model = ESAM(spec, ESAMConfig(feature_dim=4, hidden=[8], embedding_dim=4))
    g = torch.Generator().manual_seed(1)
    items = torch.randint(0, 8, (6, 4, 1), generator=g)
    full = {
        "query_categorical": torch.randint(0, 8, (6, 1), generator=g),
        "query_numeric": torch.zeros(6, 0),
        "item_categorical": items[:, :3],
        "item_numeric": torch.zeros(6, 3, 0),
        "click": torch.tensor([[1, 0, 0]] * 3 + [[0, 1, 1]] * 3),
        "target_categorical": torch.randint(0, 8, (6, 2, 1), generator=g),
        "target_numeric": torch.zeros(6, 2, 0),
    }
    padded = dict(full, item_categorical=items, item_numeric=torch.zeros(6, 4, 0))
    padded["click"] = torch.cat([full["click"], torch.ones(6, 1, dtype=torch.long)], dim=1)
    padded["item_mask"] = torch.tensor([[1, 1, 1, 0]] * 6)
    with torch.no_grad():
        expected, got = model.losses(full), model.losses(padded)
    for name in expected:
        assert float(got[name]) == pytest.approx(float(expected[name]), rel=1e-5, abs=1e-7), name


def test_cli_trains_and_exports_from_the_parquet_pair(tmp_path: Path) -> None:
    displayed, other, spec = write_pair(tmp_path)
    root = tmp_path / "models"
    (root / "esam").mkdir(parents=True)
    (root / "esam" / "config.toml").write_text(CONFIG_TOML)
    common = ["--repository", str(root), "--work-dir", str(tmp_path / "work")]
    runner = CliRunner()
    train = ["train", "esam", "--logs", str(displayed), "--non-displayed", str(other), "--spec", str(spec)]
    result = runner.invoke(app, [*train, "--no-progress", *common])
    assert result.exit_code == 0, result.output + repr(result.exception)
    result = runner.invoke(app, ["export", "esam", *common])
    assert result.exit_code == 0, result.output + repr(result.exception)
    manifest = read_manifest(root, "esam", 1)
    assert "click_auc" in manifest.metrics and manifest.data_fingerprint.startswith("displayed:")
    directory = root / "esam" / "1"
    assert sorted(np.load(directory / CATALOG_IDS).tolist()) == sorted(f"k{s}" for s in range(30))
    assert np.load(directory / CATALOG_EMBEDDINGS).shape == (30, 4)
    # evaluated on a log of its own features: the click AUC of its scores (the report held no metric)
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "esam", "--logs", str(displayed), "--out", str(out), "-r", str(root)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    metrics = json.loads(out.read_text())["metrics"]
    assert 0.0 <= metrics["click_auc"]["value"] <= 1.0 and metrics["click_logloss"]["value"] > 0


def test_a_null_in_the_non_displayed_table_is_refused_naming_it(tmp_path: Path) -> None:
    """A null item id became the catalog item 'None', which top-k could serve."""
    displayed, other, spec = write_pair(tmp_path)
    table = pq.read_table(other)
    ids = table.column("sku").to_pylist()
    ids[3] = None
    pq.write_table(table.set_column(table.column_names.index("sku"), "sku", pa.array(ids)), other)
    root = tmp_path / "models"
    (root / "esam").mkdir(parents=True)
    (root / "esam" / "config.toml").write_text(CONFIG_TOML)
    train = ["train", "esam", "--logs", str(displayed), "--non-displayed", str(other), "--spec", str(spec)]
    result = CliRunner().invoke(app, [*train, "--no-progress", "--repository", str(root)])
    assert result.exit_code != 0
    assert "(non-displayed): required feature 'sku' is missing on 1 row" in str(result.exception)


def test_a_refusal_in_a_non_displayed_folder_names_the_file_and_its_own_row(tmp_path: Path) -> None:
    """The files were checked joined: the folder was named, and the second file's rows numbered on from the
    first's (row 16 of a file of 10 rows)."""
    _, other, spec_path = write_pair(tmp_path)
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.parquet").write_bytes(other.read_bytes())
    table = pq.read_table(other)
    ids = table.column("sku").to_pylist()
    ids[6] = None  # in the second row group of 4 rows
    pq.write_table(
        table.set_column(table.column_names.index("sku"), "sku", pa.array(ids)), shards / "b.parquet", row_group_size=4
    )
    with pytest.raises(ValueError) as refused:
        read_candidates(shards, FeatureSpec.from_toml(spec_path))
    message = str(refused.value)
    assert f"{shards / 'b.parquet'} (non-displayed): required feature 'sku' is missing on 1 row" in message
    assert parquet_row(message, shards / "b.parquet")["sku"] is None


def test_a_non_displayed_file_that_cannot_be_read_or_joined_is_named(tmp_path: Path) -> None:
    """The non-displayed files were read and joined without the displayed log's safeguards: a damaged
    file was pyarrow's error naming no file, a column of text in one file and numbers in another too."""
    _, other, spec_path = write_pair(tmp_path)
    spec = FeatureSpec.from_toml(spec_path)
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.parquet").write_bytes(other.read_bytes())
    (shards / "b.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"non-displayed table .*shards/b\.parquet cannot be read"):
        read_candidates(shards, spec)
    table = pq.read_table(other)
    prices = pa.array([str(price) for price in table.column("price").to_pylist()])
    pq.write_table(table.set_column(table.column_names.index("price"), "price", prices), shards / "b.parquet")
    # each file is checked alone before the join (its refusal names its own rows): the text column is refused
    # in the file that holds it, before the two files' types are compared
    with pytest.raises(ValueError, match=r"shards/b\.parquet \(non-displayed\): numeric feature 'price' must be"):
        read_candidates(shards, spec)


def test_a_non_displayed_table_lacking_a_column_gets_the_displayed_log_s_hints(tmp_path: Path) -> None:
    """The non-displayed table's check of its columns was its own, without the impression log's hints: a name
    differing in case was "lacks the candidate columns ['sku']" alone, and so was a semicolon CSV."""
    _, other, spec_path = write_pair(tmp_path)
    spec = FeatureSpec.from_toml(spec_path)
    table = pq.read_table(other)
    pq.write_table(table.rename_columns(["request_id", "SKU", "brand", "price"]), other)
    with pytest.raises(ValueError) as refused:
        read_candidates(other, spec)
    assert str(refused.value) == (
        f"non-displayed table {other} lacks the columns ['sku']: add them to the table (a feature can instead be made "
        "optional in the spec: required = false, default = ...); it has ['SKU']: column names must match exactly "
        "(case and spaces)"
    )
    semicolons = tmp_path / "non_displayed.csv"
    semicolons.write_text("sku;brand;price\nk20;b0;25.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks the columns \['sku', 'brand', 'price'\]: .* holds no comma: write"):
        read_candidates(semicolons, spec)


def test_the_spec_ctr_new_kept_is_used_without_spec(tmp_path: Path) -> None:
    """`ctr train` of a retrieval model still asked for --spec: the fallback was for impression models only."""
    displayed, other, spec = write_pair(tmp_path)
    root = tmp_path / "models"
    runner = CliRunner()
    assert runner.invoke(app, ["new", "mine", "--kind", "esam", "--spec", str(spec), "-r", str(root)]).exit_code == 0
    train = ["train", "mine", "--logs", str(displayed), "--non-displayed", str(other), "--no-progress"]
    result = runner.invoke(app, [*train, "-r", str(root), "--work-dir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_logs_without_the_non_displayed_table_are_refused(tmp_path: Path) -> None:
    displayed, _, spec = write_pair(tmp_path)
    root = tmp_path / "models"
    (root / "esam").mkdir(parents=True)
    (root / "esam" / "config.toml").write_text(CONFIG_TOML)
    result = CliRunner().invoke(
        app, ["train", "esam", "--logs", str(displayed), "--spec", str(spec), "--repository", str(root)]
    )
    assert result.exit_code != 0 and "--non-displayed" in str(result.exception)


def test_a_small_log_and_a_long_request_are_each_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The retrieval path said nothing of either: a few-step fit on a small log gave click AUC 0.48 (an
    audit's 400-request log), and one 3,000-item request padded every query to 3,000 slots (1.5 GB)."""
    displayed, other, spec = write_pair(tmp_path)
    root = tmp_path / "models"
    (root / "esam").mkdir(parents=True)
    (root / "esam" / "config.toml").write_text(CONFIG_TOML)
    common = ["--repository", str(root), "--work-dir", str(tmp_path / "work"), "--no-progress"]
    train = ["train", "esam", "--logs", str(displayed), "--non-displayed", str(other), "--spec", str(spec)]
    with caplog.at_level("WARNING"):
        assert CliRunner().invoke(app, [*train, *common]).exit_code == 0
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("esam trains for only" in m and "clicks in 30 training requests" in m for m in said), said
    assert not any("padded to the longest" in m for m in said)  # 2 or 3 items each: no padding to speak of

    table = pq.read_table(displayed).to_pylist()
    long = [dict(table[0], request_id="long", position=p, sku=f"k{p % 20}") for p in range(1, 61)]
    pq.write_table(pa.Table.from_pylist(table + long), displayed)
    caplog.clear()
    with caplog.at_level("WARNING"):
        build_log_data(displayed, other, FeatureSpec.from_toml(spec), n_targets=3, seed=0)
    (padded,) = [r.getMessage() for r in caplog.records if "padded to the longest" in r.getMessage()]
    assert "60 displayed items (median 3)" in padded and "2460 item slots for 160 displayed rows" in padded


def test_a_displayed_log_without_clicks_is_refused(tmp_path: Path) -> None:
    """As the impression models' logs are: a retrieval model trained on no click learned nothing."""
    displayed, other, spec = write_pair(tmp_path)
    table = pq.read_table(displayed)
    no_clicks = pa.array(np.zeros(table.num_rows, np.int64))
    pq.write_table(table.set_column(table.schema.get_field_index("click"), "click", no_clicks), displayed)
    root = tmp_path / "models"
    (root / "esam").mkdir(parents=True)
    (root / "esam" / "config.toml").write_text(CONFIG_TOML)
    train = ["train", "esam", "--logs", str(displayed), "--non-displayed", str(other), "--spec", str(spec)]
    result = CliRunner().invoke(app, [*train, "--no-progress", "--repository", str(root), "--work-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "the training rows (the first 75% of the log's rows) of" in str(result.exception)
    assert re.search(r"click is 0 on every row of \d+ impressions", str(result.exception))
    clicks_late = np.zeros(table.num_rows, np.int64)
    clicks_late[-5:] = 1  # the held-out tail's requests alone clicked: counted over the whole log, it trained
    pq.write_table(table.set_column(table.schema.get_field_index("click"), "click", pa.array(clicks_late)), displayed)
    result = CliRunner().invoke(app, [*train, "--no-progress", "--repository", str(root), "--work-dir", str(tmp_path)])
    assert result.exit_code != 0 and "click is 0 on every row" in str(result.exception), result.output
