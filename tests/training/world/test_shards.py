"""`ctr simulate --shards`: one day per shard, row groups, a manifest and a spec; the same bytes for a seed."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from training.logs.shard_folder import manifest_spec
from training.world import World, WorldConfig
from training.world.shards import write_shards

SMALL_WORLD = WorldConfig(seed=0, n_users=300, n_ads=100)


def test_cli_writes_shards_row_groups_and_manifest(tmp_path):
    out = tmp_path / "shards"
    arguments = ["simulate", "--out", str(out), "--shards", "3", "--rows-per-shard", "1000", "--row-group-rows", "300"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["rows"] == 3000 and [s["file"] for s in manifest["shards"]] == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"
    ]  # fmt: skip
    for entry in manifest["shards"]:
        metadata = pq.ParquetFile(out / entry["file"]).metadata
        assert metadata.num_rows == entry["rows"] == 1000
        assert metadata.num_row_groups == entry["row_groups"] == 4  # 300 + 300 + 300 + 100
    days = [pq.read_table(out / s["file"], columns=["request_id"]).column(0)[0].as_py() for s in manifest["shards"]]
    assert days == ["d0-r0", "d1-r0", "d2-r0"]  # a day per shard, in time order
    assert manifest_spec(out / "*.parquet") == out / "_spec.toml"


def test_same_seed_same_bytes_and_one_day_at_a_time_equals_the_whole_run(tmp_path):
    first = write_shards(World(SMALL_WORLD), tmp_path / "a", 2, 500, seed=4, row_group_rows=128)
    second = write_shards(World(SMALL_WORLD), tmp_path / "b", 2, 500, seed=4, row_group_rows=128)
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]
    whole = World(SMALL_WORLD).simulate(days=2, requests_per_day=100, policy="feedback", seed=4)
    shards = pq.read_table(tmp_path / "a").select(whole.column_names)
    assert shards.equals(whole)  # the feedback policy learns across shards as across days


def test_rows_per_shard_must_fill_whole_requests(tmp_path):
    with pytest.raises(ValueError, match="multiple of the world's 5 slots"):
        write_shards(World(SMALL_WORLD), tmp_path, 2, 1001)
