"""Logs as tools other than pandas write them (DuckDB, polars, a warehouse's export, Spark's CSV): read as
the same log, or refused saying what to change. A DuckDB ``uuid`` request id stopped `ctr spec infer` and
`ctr train` with a traceback, polars' ``string_view`` text was "not a string", a ``DECIMAL(38, 0)`` id was
proposed as a numeric feature and its labels refused, pandas' index was proposed as a required feature, and
a folder's date key was proposed with no word that every request must then send it."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from common.features import Feature, FeatureSpec, NumericStats
from training.logs.column_arrays import column_array, feature_columns
from training.logs.feature_checks import check_features
from training.logs.label_checks import check_labels
from training.logs.reading import read_logs
from training.logs.spec_infer import infer_spec
from training.logs.stream import ShardedLogs

ROWS = 600


def plain_log(rows: int = ROWS) -> pa.Table:
    rng = np.random.default_rng(3)
    request = np.arange(rows) // 3
    return pa.table(
        {
            "request_id": pa.array([f"r{r}" for r in request]),
            "ts": request,
            "site": pa.array([f"s{r % 5}" for r in request]),
            "campaign": rng.integers(0, 40, rows),
            "bid": rng.uniform(0.1, 2.0, rows),
            "position": np.arange(rows) % 3 + 1,
            "click": (rng.random(rows) < 0.3).astype(np.int8),
            "conversion": np.zeros(rows, dtype=np.int8),
        }
    )


SPEC = FeatureSpec(
    (
        Feature("site", "categorical", "context", buckets=11),
        Feature("campaign", "categorical", "candidate", buckets=163),
        Feature("bid", "numeric", "candidate"),
    ),
    {"bid": NumericStats(mean=1.0, std=0.5)},
)


def write(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def replaced(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, column)


def same_log(tmp_path: Path, variant: pa.Table) -> None:
    """``variant`` proposes the plain log's spec, and reads as the same features, in memory and streamed."""
    plain = write(plain_log(), tmp_path / "plain" / "log.parquet")
    other = write(variant, tmp_path / "other" / "log.parquet")
    assert infer_spec(other).spec == infer_spec(plain).spec
    expected = feature_columns(read_logs(plain, SPEC), SPEC)
    for name, values in feature_columns(read_logs(other, SPEC), SPEC).items():
        assert values.tolist() == expected[name].tolist(), name
    streamed = ShardedLogs(other.parent, SPEC)
    (span,) = streamed.spans(0, streamed.rows)  # one row group
    table = streamed.read(span)
    check_features(table, SPEC, "streamed")
    check_labels(table, "streamed")
    for name, values in feature_columns(table, SPEC).items():
        assert values.tolist() == expected[name].tolist(), name


@pytest.mark.skipif(not hasattr(pa, "uuid"), reason="pyarrow before 18 has no uuid type")
def test_a_uuid_request_id_is_a_request_id(tmp_path: Path) -> None:
    table = plain_log()
    ids = [uuid.uuid5(uuid.NAMESPACE_DNS, r).bytes for r in table.column("request_id").to_pylist()]
    storage = pa.array(ids, pa.binary(16))
    same_log(tmp_path, replaced(table, "request_id", pa.ExtensionArray.from_storage(pa.uuid(), storage)))


@pytest.mark.skipif(not hasattr(pa, "uuid"), reason="pyarrow before 18 has no uuid type")
def test_a_uuid_feature_is_its_text_as_a_request_sends_it(tmp_path: Path) -> None:
    """Read as its 16 bytes, a uuid feature was left out by `ctr spec infer` and refused by `ctr train`."""
    visitors = [uuid.uuid5(uuid.NAMESPACE_URL, str(i % 50)) for i in range(ROWS)]
    storage = pa.array([v.bytes if i % 7 else None for i, v in enumerate(visitors)], pa.binary(16))
    table = plain_log().append_column("visitor", pa.ExtensionArray.from_storage(pa.uuid(), storage))
    path = write(table, tmp_path / "log.parquet")
    assert {f.name: f.kind for f in infer_spec(path).spec.features}["visitor"] == "categorical"
    spec = FeatureSpec((*SPEC.features, Feature("visitor", "categorical", "context", 211, False)), SPEC.stats)
    values = feature_columns(read_logs(path, spec), spec)["visitor"].tolist()
    expected = [str(v) if i % 7 else None for i, v in enumerate(visitors)]
    assert values == expected
    streamed = ShardedLogs(path, spec)  # the held-out span starts inside the row group: a sliced column
    _, (held_out,) = streamed.split(0.1)
    assert held_out.start > 0
    assert column_array(streamed.read(held_out), "visitor").tolist() == expected[held_out.start :]


@pytest.mark.skipif(not hasattr(pa, "string_view"), reason="pyarrow before 16 has no view types")
def test_string_view_text_is_text(tmp_path: Path) -> None:
    table = plain_log()
    for name in ("request_id", "site"):
        table = replaced(table, name, table.column(name).cast(pa.string_view()))
    same_log(tmp_path, table)


def test_decimal_integers_are_integers_ids_and_labels_alike(tmp_path: Path) -> None:
    table = plain_log()
    for name in ("campaign", "position", "click", "conversion"):
        table = replaced(table, name, table.column(name).cast(pa.decimal128(38, 0)))
    same_log(tmp_path, table)


def test_a_decimal_past_int64_or_with_a_fraction_stays_a_number(tmp_path: Path) -> None:
    table = plain_log()
    huge = pa.array([10**20 + i for i in range(ROWS)], pa.decimal128(38, 0))
    table = table.append_column("reach", huge).append_column("price", table.column("bid").cast(pa.decimal128(12, 2)))
    spec = infer_spec(write(table, tmp_path / "log.parquet")).spec
    assert {f.name: f.kind for f in spec.features}["reach"] == "numeric"
    assert {f.name: f.kind for f in spec.features}["price"] == "numeric"


def test_pandas_index_is_left_out_saying_so(tmp_path: Path) -> None:
    table = plain_log()  # as pandas' to_parquet writes a sorted or filtered frame: its index as a column
    table = table.append_column("__index_level_0__", pa.array(np.random.default_rng(0).permutation(ROWS)))
    proposal = infer_spec(write(table, tmp_path / "log.parquet"))
    assert "__index_level_0__" not in [f.name for f in proposal.spec.features]
    assert proposal.skipped["__index_level_0__"].startswith("pandas' index written as a column")


def test_a_folder_key_proposed_as_a_feature_carries_a_caution(tmp_path: Path) -> None:
    table = plain_log()
    half = ROWS // 2
    write(table.slice(0, half), tmp_path / "logs" / "dt=2026-12-01" / "part-0.parquet")
    write(table.slice(half), tmp_path / "logs" / "dt=2026-12-02" / "part-0.parquet")
    proposal = infer_spec(tmp_path / "logs")
    assert "dt" in [f.name for f in proposal.spec.features]
    assert proposal.cautions["dt"].startswith("read from the folders' names (dt=...): every request must send it")


def test_a_csv_without_a_header_is_said_to_need_one(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    pacsv.write_csv(plain_log(), path, pacsv.WriteOptions(include_header=False))
    with pytest.raises(ValueError, match="a CSV's first line must name the columns, write it with a header"):
        read_logs(path)


def test_a_file_named_for_another_format_is_said_to_be_read_as_parquet(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_text("request_id\tts\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"a file named other than \.parquet or \.csv, .* is read as Parquet"):
        read_logs(path)
