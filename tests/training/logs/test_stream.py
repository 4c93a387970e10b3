"""Streaming shards: row groups split across processes and workers without overlap, a shuffle buffer
that emits every row once, and a statistics pass that fits what the in-memory trainer fits."""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from common.encoder import FeatureEncoder, fit_statistics
from common.features import MAX_CATEGORY_CHARS, Feature, FeatureSpec
from training.fitting.dataset import ImpressionTensors
from training.fitting.distributed_train import train_streaming
from training.logs.column_arrays import feature_columns
from training.logs.log_statistics import LogStatistics, chunk_statistics, merge_in_order
from training.logs.reading import read_logs
from training.logs.stream import ImpressionStream, ShardedLogs, Span, epoch_order, sample_spans, share, shuffled_batches

SPEC = FeatureSpec(
    (
        Feature("row", "categorical", "candidate", buckets=1 << 20),
        Feature("price", "numeric", "candidate", required=False, default=2.0),
    )
)


def write_shards(folder, shards: int = 4, rows: int = 250, row_group: int = 60) -> None:
    """Shards whose ``row`` column numbers every row of the log (0, 1, ...), in file order."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        n = rows + 7 * shard  # shards of different sizes
        start = sum(rows + 7 * s for s in range(shard))
        click = (rng.random(n) < 0.3).astype(np.int8)
        price = rng.normal(3.0, 2.0, n)
        price[rng.random(n) < 0.1] = np.nan  # absent: left out of the statistics
        table = pa.table(
            {
                "row": pa.array([str(i) for i in range(start, start + n)]),
                "price": pa.array(price, pa.float64()),
                "position": pa.array(rng.integers(1, 4, n), pa.int32()),
                "click": pa.array(click),
                "conversion": pa.array(click * (rng.random(n) < 0.5), pa.int8()),
            }
        )
        pq.write_table(table, folder / f"part-{shard:05d}.parquet", row_group_size=row_group)


@pytest.fixture
def shards(tmp_path):
    write_shards(tmp_path / "shards")
    return ShardedLogs(tmp_path / "shards" / "*.parquet", SPEC)


def row_ids(logs: ShardedLogs, spans: list[Span]) -> list[int]:
    return [int(r) for span in spans for r in logs.read(span, ["row"]).column("row").to_pylist()]


def test_row_groups_are_listed_in_file_order_at_their_global_offsets(shards):
    assert shards.rows == 4 * 250 + 7 * (0 + 1 + 2 + 3)
    assert row_ids(shards, shards.spans(0, shards.rows)) == list(range(shards.rows))
    train, held_out = shards.split(0.2)
    cut = round(shards.rows * 0.8)
    assert row_ids(shards, train) == list(range(cut)) and row_ids(shards, held_out) == list(range(cut, shards.rows))


@pytest.mark.parametrize(("world_size", "workers"), [(1, 1), (2, 1), (2, 3), (3, 2)])
def test_each_process_and_worker_reads_its_own_equal_share_of_rows(shards, world_size, workers):
    train, _ = shards.split(0.1)
    total = sum(s.rows for s in train)
    seen: list[int] = []
    per_rank = []
    for rank in range(world_size):
        mine = share(epoch_order(train, seed=3, epoch=1), rank, world_size)
        per_rank.append(sum(s.rows for s in mine))
        for worker in range(workers):
            seen += row_ids(shards, share(mine, worker, workers))
    assert len(seen) == len(set(seen))  # no row read twice
    assert per_rank == [total // world_size] * world_size  # every process takes the same number of steps
    assert total - len(seen) < world_size * workers  # only the remainder of the division is left out
    assert set(seen) <= set(range(round(shards.rows * 0.9)))  # no held-out row


def test_epochs_order_row_groups_differently_but_identically_in_every_process(shards):
    train, _ = shards.split(0.1)
    assert epoch_order(train, 0, 0) == epoch_order(train, 0, 0)
    assert epoch_order(train, 0, 0) != epoch_order(train, 0, 1)


def test_shuffle_buffer_emits_every_row_once_in_full_minibatches_but_the_last():
    chunks = [ImpressionTensors({"click": torch.arange(i * 70, (i + 1) * 70)}) for i in range(10)]
    batches = list(shuffled_batches(iter(chunks), 32, 200, torch.Generator().manual_seed(0)))
    rows = torch.cat([b["click"] for b in batches])
    assert sorted(rows.tolist()) == list(range(700))
    assert [len(b["click"]) for b in batches] == [32] * 21 + [700 - 21 * 32]
    assert rows[:200].tolist() != list(range(200))  # mixed


def test_stream_through_dataloader_workers_yields_the_promised_steps_and_rows(shards):
    spec = fit_statistics(SPEC, feature_columns(read_logs(shards.path, SPEC), SPEC))
    train, _ = shards.split(0.1)
    for rank in range(2):
        stream = ImpressionStream(shards, train, FeatureEncoder(spec), {1: 0.3, 2: 0.3, 3: 0.3}, 16, rank, 2, 0, 50)
        stream.set_epoch(2)
        batches = list(DataLoader(stream, batch_size=None, num_workers=2))
        assert len(batches) == stream.steps(workers=2)
        assert sum(len(b["click"]) for b in batches) == stream.rows_per_epoch(workers=2)
        assert set(batches[0]) == {"categorical", "numeric", "click", "conversion", "position", "b"}


def test_statistics_pass_fits_what_the_in_memory_trainer_fits(shards):
    table = read_logs(shards.path, SPEC)
    expected = fit_statistics(SPEC, feature_columns(table, SPEC))
    partials = [(g, chunk_statistics(shards, g, SPEC)) for g in range(len(shards.groups))]
    statistics = merge_in_order(partials[1::2] + partials[::2])  # shared out as two processes would
    fitted = statistics.fitted(SPEC)
    assert fitted.stats["price"].mean == pytest.approx(expected.stats["price"].mean, rel=1e-12)
    assert fitted.stats["price"].std == pytest.approx(expected.stats["price"].std, rel=1e-12)
    assert (fitted.stats["price"].low, fitted.stats["price"].high) == (
        expected.stats["price"].low,
        expected.stats["price"].high,
    )
    tensors = ImpressionTensors.from_table(table, FeatureEncoder(expected))
    streamed = ImpressionTensors.from_table(table, FeatureEncoder(fitted), statistics.position_ctr())
    assert torch.allclose(tensors.tensors["b"], streamed.tensors["b"])
    assert statistics.rows == table.num_rows


def test_statistics_round_trip_through_json(shards, tmp_path):
    statistics = merge_in_order([(g, chunk_statistics(shards, g, SPEC)) for g in range(len(shards.groups))])
    statistics.save(tmp_path / "statistics.json")
    assert LogStatistics.load(tmp_path / "statistics.json") == statistics


def test_statistics_written_before_ranges_were_kept_read_back_without_one(shards, tmp_path, caplog):
    """A statistics.json of an earlier run (``--statistics``) has no low and high: its model clips at none."""
    statistics = merge_in_order([(g, chunk_statistics(shards, g, SPEC)) for g in range(len(shards.groups))])
    statistics.save(tmp_path / "statistics.json")
    payload = json.loads((tmp_path / "statistics.json").read_text())
    for moments in payload["moments"].values():
        del moments["low"], moments["high"]
    (tmp_path / "old.json").write_text(json.dumps(payload))
    old = LogStatistics.load(tmp_path / "old.json")
    assert old.fitted(SPEC).stats["price"].low is None
    assert old.merge(statistics).moments["price"].low is None
    with caplog.at_level(logging.WARNING, logger="training.logs.log_statistics"):
        old.warn_of_log_quality(SPEC, shards)
    assert "the statistics read back hold no training range for ['price']" in caplog.text  # it was silent


def statistics_pass_with_a_wrong_value(folder, column: int, row: int, value: float) -> None:
    """The statistics pass over two shards, the second's ``row`` of ``column`` set to ``value``."""
    write_shards(folder, shards=2)
    bad = folder / "part-00001.parquet"
    table = pq.read_table(bad)
    values = table.column(column).to_numpy().copy()
    values[row] = value
    pq.write_table(table.set_column(column, table.column_names[column], pa.array(values)), bad, row_group_size=60)
    logs = ShardedLogs(folder, SPEC)
    for group in range(len(logs.groups)):
        chunk_statistics(logs, group, SPEC)


def test_statistics_pass_refuses_conversions_without_clicks_naming_the_file(tmp_path):
    write_shards(tmp_path / "first", shards=2)
    unclicked_row = int(
        np.flatnonzero(pq.read_table(tmp_path / "first" / "part-00001.parquet")["click"].to_numpy() == 0)[0]
    )
    unclicked = r"part-00001\.parquet \(row group \d+\) has conversions on unclicked impressions"
    with pytest.raises(ValueError, match=unclicked):
        statistics_pass_with_a_wrong_value(tmp_path / "shards", 4, unclicked_row, 1)


def test_statistics_pass_refuses_a_feature_value_the_service_would_refuse_naming_the_file(tmp_path):
    """The streamed pass checks what the in-memory reader checks (training/logs.check_features); the row
    group and the row are numbered within the file, as a user would look them up."""
    infinite = r"part-00001\.parquet \(row group 1\): numeric feature 'price' must be a finite number.*row 100, is inf"
    with pytest.raises(ValueError, match=infinite):
        statistics_pass_with_a_wrong_value(tmp_path / "shards", 1, 100, np.inf)


def test_the_statistics_pass_refuses_over_long_text_in_an_optional_categorical(tmp_path):
    """check_features refuses a category past MAX_CATEGORY_CHARS in any categorical column, as the in-memory
    reader does; the pass skipped optional text columns as holding nothing it could refuse."""
    write_shards(tmp_path / "shards", shards=2)
    path = tmp_path / "shards" / "part-00001.parquet"
    table = pq.read_table(path)
    rows = table.column("row").to_pylist()
    rows[70] = "x" * (MAX_CATEGORY_CHARS + 1)
    pq.write_table(table.set_column(0, "row", pa.array(rows)), path, row_group_size=60)
    optional = FeatureSpec((Feature("row", "categorical", "candidate", buckets=8, required=False, default="0"),))
    with pytest.raises(ValueError, match=r"must be a string or an integer of at most 1024 characters"):
        read_logs(tmp_path / "shards", optional)
    logs = ShardedLogs(tmp_path / "shards", optional)
    long_text = r"part-00001\.parquet \(row group 1\): categorical feature 'row' must be .* at most 1024 characters"
    with pytest.raises(ValueError, match=long_text):
        merge_in_order([(g, chunk_statistics(logs, g, optional)) for g in range(len(logs.groups))])


def test_a_column_named_twice_is_refused_as_in_memory_in_the_first_shard_or_a_later_one(tmp_path):
    """pyarrow's own words were a KeyError (first shard) or "Can't unify schema with duplicate field names"."""
    for doubled in ("part-00000.parquet", "part-00001.parquet"):
        folder = tmp_path / doubled
        write_shards(folder, shards=2)
        table = pq.read_table(folder / doubled)
        pq.write_table(
            pa.Table.from_arrays([*table.columns, table["click"]], [*table.column_names, "click"]), folder / doubled
        )
        said = rf"impression log .*{doubled} holds more than one column named 'click': keep one of them"
        with pytest.raises(ValueError, match=said):
            read_logs(folder, SPEC)
        with pytest.raises(ValueError, match=said):
            ShardedLogs(folder, SPEC)


def test_a_missing_column_is_said_with_the_in_memory_hints(tmp_path):
    write_shards(tmp_path / "shards", shards=1)
    path = tmp_path / "shards" / "part-00000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.rename_columns(["row", "price", "position", "Click", "conversion"]), path)
    near = r"lacks the columns \['click'\]: add them to the log; it has \['Click'\]: column names must match exactly"
    with pytest.raises(ValueError, match=near):
        ShardedLogs(tmp_path / "shards", SPEC)
    ad = FeatureSpec((Feature("ad", "categorical", "candidate", buckets=4),))
    with pytest.raises(ValueError, match=r"'ad'\]: add them to the log \(a feature can instead be made optional"):
        ShardedLogs(tmp_path / "shards", ad)


def test_missing_columns_and_csv_are_refused(tmp_path):
    write_shards(tmp_path / "shards", shards=1)
    with pytest.raises(ValueError, match=r"lacks the columns \['ad'\]"):
        ShardedLogs(tmp_path / "shards", FeatureSpec((Feature("ad", "categorical", "candidate", buckets=4),)))
    (tmp_path / "logs.csv").write_text("position,click,conversion\n1,0,0\n")
    with pytest.raises(ValueError, match="streaming reads Parquet shards"):
        ShardedLogs(tmp_path / "logs.csv", SPEC)


def test_sample_spreads_over_the_training_rows(shards):
    train, _ = shards.split(0.1)
    assert sample_spans(train, 10**9) == train
    chosen = sample_spans(train, 200)
    assert chosen[0] == train[0] and chosen[-1] == train[-1] and 150 <= sum(s.rows for s in chosen) <= 300


def test_each_shard_s_own_columns_are_checked_and_an_empty_shard_is_skipped(tmp_path):
    folder = tmp_path / "shards"
    write_shards(folder, shards=3)
    second = pq.read_table(folder / "part-00001.parquet")
    pq.write_table(second.drop_columns(["price"]), folder / "part-00001.parquet", row_group_size=60)
    pq.write_table(second.slice(0, 0), folder / "part-00003.parquet")  # a shard without rows
    logs = ShardedLogs(folder, SPEC)  # the optional price, missing from a later shard: null there
    assert "price" in logs.columns and logs.rows == 250 + 257 + 264
    statistics = merge_in_order([(g, chunk_statistics(logs, g, SPEC)) for g in range(len(logs.groups))])
    assert statistics.rows == logs.rows
    assert set(logs.read(logs.spans(250, 507)[0], ["price"]).column("price").to_pylist()) == {None}

    first = pq.read_table(folder / "part-00000.parquet")
    pq.write_table(first.drop_columns(["row"]), folder / "part-00002.parquet", row_group_size=60)
    with pytest.raises(ValueError, match=r"part-00002\.parquet lacks the columns \['row'\]"):
        ShardedLogs(folder, SPEC)
    pq.write_table(first.set_column(1, "price", pa.array(["x"] * first.num_rows)), folder / "part-00002.parquet")
    with pytest.raises(
        ValueError, match=r"part-00002\.parquet disagrees with \S*shards/part-00000\.parquet .* on a column's type"
    ):
        ShardedLogs(folder, SPEC)  # named the directory alone


def test_shards_are_joined_as_the_in_memory_trainer_joins_files(tmp_path):
    """An int64 position in one shard, float32 prices in another, and an empty shard of its own types: the
    in-memory trainer read them (permissive), the streamed one refused the directory."""
    folder = tmp_path / "shards"
    write_shards(folder, shards=3)
    first = pq.read_table(folder / "part-00000.parquet")
    pq.write_table(
        first.set_column(2, "position", first.column("position").cast(pa.int64())),
        folder / "part-00000.parquet",
        row_group_size=60,
    )
    second = pq.read_table(folder / "part-00001.parquet")
    pq.write_table(
        second.set_column(1, "price", second.column("price").cast(pa.float32())),
        folder / "part-00001.parquet",
        row_group_size=60,
    )
    empty = second.slice(0, 0).set_column(2, "position", pa.array([], pa.string()))  # rows none, types its own
    pq.write_table(empty, folder / "part-00003.parquet")
    logs = ShardedLogs(folder, SPEC)
    assert logs.rows == read_logs(folder).num_rows == 250 + 257 + 264
    positions = [
        v for span in logs.spans(0, logs.rows) for v in logs.read(span, ["position"]).column("position").to_pylist()
    ]
    assert positions == read_logs(folder).column("position").to_pylist()


def test_an_unsigned_64_bit_column_beside_a_signed_one_is_refused_naming_the_shard(tmp_path):
    """The permissive join reads both as int64, which 2**63 + 5 does not fit: it failed when the row group
    was read, naming no shard; now when the shards are listed, as the in-memory reader refuses the files."""
    folder = tmp_path / "shards"
    write_shards(folder, shards=2)
    for shard, column in ((0, pa.array([7], pa.int64())), (1, pa.array([2**63 + 5], pa.uint64()))):
        table = pq.read_table(folder / f"part-{shard:05d}.parquet")
        extra = pa.array(column.to_pylist() * table.num_rows, column.type)  # a column no feature reads
        pq.write_table(table.append_column("account", extra), folder / f"part-{shard:05d}.parquet")
    with pytest.raises(ValueError, match=r"part-00001\.parquet disagrees with \S*shards/part-00000\.parquet .*account"):
        ShardedLogs(folder, SPEC)
    with pytest.raises(ValueError, match=r"part-00001\.parquet disagrees with \S*shards/part-00000\.parquet .*account"):
        read_logs(folder)


def test_a_shard_that_is_no_parquet_file_is_named(tmp_path):
    folder = tmp_path / "shards"
    write_shards(folder, shards=2)
    (folder / "part-00002.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match=r"impression log .*part-00002\.parquet cannot be read: "):
        ShardedLogs(folder, SPEC)
    (folder / "part-00002.parquet").write_bytes((folder / "part-00000.parquet").read_bytes()[:1000])  # truncated
    with pytest.raises(ValueError, match=r"impression log .*part-00002\.parquet cannot be read: "):
        ShardedLogs(folder, SPEC)


def test_statistics_that_are_not_a_streamed_run_s_are_refused(tmp_path):
    (tmp_path / "statistics.json").write_text('{"moments": {}}')
    with pytest.raises(ValueError, match=r"statistics\.json is not the statistics\.json of a streamed run \(KeyError"):
        LogStatistics.load(tmp_path / "statistics.json")


@pytest.mark.parametrize("edit", [{"high": None}, {"low": None}, {"low": 5.0, "high": 1.0}])
def test_statistics_with_half_a_range_are_refused_at_once(shards, tmp_path, edit):
    """A hand-edited statistics.json with low but no high was read, then raised a TypeError in the merge (or
    gave a range of low alone)."""
    statistics = merge_in_order([(g, chunk_statistics(shards, g, SPEC)) for g in range(len(shards.groups))])
    statistics.save(tmp_path / "statistics.json")
    payload = json.loads((tmp_path / "statistics.json").read_text())
    payload["moments"]["price"].update(edit)
    (tmp_path / "edited.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=r"is not the statistics\.json of a streamed run \(ValueError: a range needs"):
        LogStatistics.load(tmp_path / "edited.json")


def test_statistics_of_other_shards_with_as_many_rows_are_refused(shards, tmp_path):
    from dataclasses import replace

    from training.fitting.distributed import Processes
    from training.fitting.distributed_train import log_statistics

    fitted = log_statistics(shards, SPEC, Processes(), None)
    assert fitted.logs == shards.identity() and len(fitted.logs) == 4
    fitted.save(tmp_path / "statistics.json")
    assert log_statistics(shards, SPEC, Processes(), tmp_path / "statistics.json") == fitted
    replace(fitted, logs=[("part-00000.parquet", 1), *fitted.logs[1:]]).save(tmp_path / "other.json")
    with pytest.raises(ValueError, match=r"other\.json was fitted on other shards than those of"):
        log_statistics(shards, SPEC, Processes(), tmp_path / "other.json")


def test_a_streamed_log_without_clicks_is_refused_before_training(tmp_path):
    """The in-memory trainer refuses logs of one click class; the streaming one trained on them."""
    write_shards(tmp_path / "shards")
    for path in sorted((tmp_path / "shards").glob("*.parquet")):
        table = pq.read_table(path)
        zeros = pa.array(np.zeros(table.num_rows, np.int8))
        table = table.set_column(table.schema.get_field_index("click"), "click", zeros)
        pq.write_table(table.set_column(table.schema.get_field_index("conversion"), "conversion", zeros), path)
    (tmp_path / "models" / "esmm").mkdir(parents=True)
    (tmp_path / "models" / "esmm" / "config.toml").write_text('kind = "esmm"\n[model]\nembedding_dim = 4\n')
    (tmp_path / "spec.toml").write_text(SPEC.to_toml())
    with pytest.raises(ValueError, match=r"the training rows .* click is 0 on every row of 938 impressions"):
        train_streaming(
            "esmm", tmp_path / "shards", tmp_path / "spec.toml", tmp_path / "models", tmp_path / "work",
            distributed=False, progress=False,
        )  # fmt: skip
    assert not (tmp_path / "work" / "esmm" / "checkpoint.pt").exists()
