"""`ctr score`: a Parquet file of candidates scored offline as the live service scores them.

The same rows go to the real service (uvicorn on a loopback port), one request per request_id, one at a
time, so that each runs alone in its batch; the file's scores must be the service's bit for bit. A row the
service refuses ends the command with one `error:` line naming it, and nothing is written; the command
imports no torch (the serving image has none).
"""

from __future__ import annotations

import datetime
import functools
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.encoder import FeatureEncoder
from service.settings import Settings
from tests.support import ctr_process
from tests.support.candidates_table import REQUEST_SIZES, candidates_table
from tests.support.checkout import ROOT
from tests.support.ctr_process import one_error_line
from tests.support.named_rows import parquet_row
from tests.support.read_only_mount import needs_read_only_mount
from tests.support.server import running_server
from tests.support.tiny_model import SPEC, publish_tiny_esmm
from tests.support.torch_watch import WATCH_TORCH
from training import offline_scores
from training.logs.column_arrays import feature_columns
from training.logs.reading import read_tables
from training.offline_scores import score_file, scored_metadata, served_models

ON_CPU = {"CTR_USE_CUDA": "false"}  # as the live services here run: the same provider's floats
Ctr = Callable[..., subprocess.CompletedProcess]  # ``ctr ARGS``, in a process of its own or in this one


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    return root


@pytest.fixture(scope="module")
def service(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The live service over ``repository`` (esmm in both roles): its base URL, for every test of the module
    that sends it the requests of a file scored from ``repository``."""
    log = tmp_path_factory.mktemp("service") / "server.log"
    with running_server(repository, log, ctr_model="esmm") as (url, _):
        yield url


def request_bodies(table: pa.Table) -> Iterator[tuple[list[int], dict]]:
    """(rows, /v1/score body) per request_id: every feature of the row as a candidate's (null as null)."""
    rows = table.drop_columns(["request_id", "click"]).to_pylist()
    ids = table.column("request_id").to_pylist()
    for request in dict.fromkeys(ids):
        indices = [i for i, value in enumerate(ids) if value == request]
        candidates = [{k: (None if v != v else v) for k, v in rows[i].items()} for i in indices]  # NaN: null
        yield indices, {"candidates": candidates}


def assert_same_rows(table: pa.Table, other: pa.Table) -> None:
    """The same columns and values, NaN equal to NaN (``Table.equals`` says a NaN differs from itself)."""
    assert table.schema.remove_metadata() == other.schema.remove_metadata()
    for name in table.column_names:
        np.testing.assert_array_equal(
            table.column(name).to_numpy(zero_copy_only=False), other.column(name).to_numpy(zero_copy_only=False), name
        )


ctr = functools.partial(ctr_process.ctr, **ON_CPU)  # ``ctr ARGS`` in ``cwd``, in a process of its own


@pytest.fixture
def ctr_in_process(ctr_here: Ctr) -> Ctr:
    """``ctr ARGS`` in ``cwd`` run by this process (tests/conftest.py: ``ctr_here``), as ``ctr`` runs it in a
    process of its own: for the many cases here, where a process each spent seconds starting. A scored file,
    a refused row, a read-only --out, the help and the import of no torch keep a process of their own."""
    return functools.partial(ctr_here, **ON_CPU)


def assert_served_alike(url: str, table: pa.Table, scored: pa.Table) -> None:
    """Each request of ``table`` sent alone to the live service: its scores are ``scored``'s rows' exactly."""
    for rows, body in request_bodies(table):  # one at a time: each request alone in its batcher
        response = httpx.post(f"{url}/v1/score", json=body, timeout=30.0)
        assert response.status_code == 200, response.text
        for row, served in zip(rows, response.json()["scores"], strict=True):
            for name in ("pctr", "pctcvr", "pcvr"):
                assert scored.column(name)[row].as_py() == served[name], (row, name)


def test_the_file_s_scores_are_the_live_service_s_bit_for_bit(repository: Path, service: str, tmp_path: Path) -> None:
    table = candidates_table()
    pq.write_table(table, tmp_path / "candidates.parquet")
    done = ctr("score", "candidates.parquet", "--out", "scores.parquet", "-r", str(repository), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"scored {table.num_rows} rows in {len(REQUEST_SIZES)} requests (ctr esmm v1")
    scored = pq.read_table(tmp_path / "scores.parquet")
    assert scored.column_names == [*table.column_names, "pctr", "pctcvr", "pcvr"]
    assert_same_rows(scored.select(table.column_names), table)  # the input's columns as they were
    assert all(scored.schema.field(name).type == pa.float64() for name in ("pctr", "pctcvr", "pcvr"))
    recorded = scored_metadata(tmp_path / "scores.parquet")
    assert recorded["models"]["ctr"]["name"] == "esmm" and recorded["models"]["ctcvr"]["version"] == 1
    assert recorded["request_column"] == "request_id"
    assert_served_alike(service, table, scored)


# A request of more rows than this is run in parts by the service's batcher (policy.form_batch), as the review
# that found ctr score's one run per request set it; its runs of 7 rows round the tiny model's sums otherwise
SPLITTING_SERVING = """[serving]
max_batch_size = 7
inline_max_items = 4
"""


def test_scores_are_the_service_s_bit_for_bit_where_its_batcher_splits_a_request(
    tmp_path: Path, ctr_in_process: Ctr
) -> None:
    """A request of more rows than the model's ``max_batch_size`` runs in parts of that many rows in the
    service: one ONNX Runtime run of the whole request gave other float32 roundings (this test failed on it)."""
    repository = tmp_path / "models"
    publish_tiny_esmm(repository, weighted_pooling=True)  # sums that round by batch size, as the trained ESMM's
    (repository / "esmm" / "config.toml").write_text(SPLITTING_SERVING, encoding="utf-8")
    table = candidates_table(seed=3, sizes=[100, 3, 150, 25, 300])
    pq.write_table(table, tmp_path / "candidates.parquet")
    done = ctr_in_process("score", "candidates.parquet", "--out", "scores.parquet", "-r", str(repository), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with running_server(repository, tmp_path / "server.log", ctr_model="esmm") as (url, _):
        assert_served_alike(url, table, pq.read_table(tmp_path / "scores.parquet"))


def test_a_row_the_service_refuses_ends_the_command_naming_it_and_writes_nothing(
    repository: Path, service: str, tmp_path: Path, ctr_in_process: Ctr
) -> None:
    """The same refusal as /v1/score's 422 for that row's request, in its words but for the service's
    "candidate feature": every row goes in as a candidate, and the file's context features (``user_id``) are
    none; the row is its index in the input (here the 3rd row of the second request: row 3)."""
    table = candidates_table()
    ad_ids, users = table.column("ad_id").to_pylist(), table.column("user_id").to_pylist()
    labelled = "candidate "  # the service's label of a value in a candidate, which ctr score leaves out
    cases = [  # (column, values, ctr score's words, the service's label before them)
        ("ad_id", [*ad_ids[:3], None, *ad_ids[4:]], "feature 'ad_id' is required but missing", ""),
        (
            "ad_id",
            [*map(str, ad_ids[:3]), "a" * 2000, *map(str, ad_ids[4:])],
            "feature 'ad_id' is longer than 1024 characters",
            labelled,
        ),
        ("user_id", [*users[:3], "u" * 2000, *users[4:]], "feature 'user_id' is longer than 1024 characters", labelled),
        ("ad_id", [*ad_ids[:3], 2.5, *ad_ids[4:]], "feature 'ad_id': must be a string or an integer, not 2.5", ""),
    ]
    for name, values, said, label in cases:
        broken = table.set_column(table.column_names.index(name), name, pa.array(values))
        pq.write_table(broken, tmp_path / "candidates.parquet")
        done = ctr_in_process(
            "score", "candidates.parquet", "--out", "scores.parquet", "-r", str(repository), cwd=tmp_path
        )
        assert one_error_line(done) == f"error: row 3 of the input (candidates.parquet): {said}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates.parquet"]  # no scores, no temporary
        (_, body), *_ = [item for item in request_bodies(broken) if 3 in item[0]]
        response = httpx.post(f"{service}/v1/score", json=body, timeout=30.0)
        assert response.status_code == 422 and response.json()["error"] == label + said, response.text


def test_a_refused_row_of_a_folder_s_second_file_is_its_row_in_that_file(repository: Path, tmp_path: Path) -> None:
    """The row was numbered on from the first file's rows while the message named the second file: row 20 of a
    file of 16 rows. It is counted from 0 in the named file, not from its row group's start, and the file is
    named by its path, not its name alone: in a partitioned folder that is every day's file's
    (``day=1/part-0.parquet``, ``day=2/part-0.parquet``)."""
    table = candidates_table()
    for day in ("day=1", "day=2"):
        (tmp_path / "shards" / day).mkdir(parents=True)
    pq.write_table(table.slice(0, 11), tmp_path / "shards" / "day=1" / "part-0.parquet")  # requests r0-r2
    second = table.slice(11)
    ad_ids = second.column("ad_id").to_pylist()
    ad_ids[9] = None  # in the second row group of 8 rows
    second = second.set_column(second.column_names.index("ad_id"), "ad_id", pa.array(ad_ids, pa.int64()))
    pq.write_table(second, tmp_path / "shards" / "day=2" / "part-0.parquet", row_group_size=8)
    done = ctr("score", "shards", "--out", "scores.parquet", "-r", str(repository), cwd=tmp_path)
    message = one_error_line(done)
    assert message == "error: row 9 of the input (shards/day=2/part-0.parquet): feature 'ad_id' is required but missing"
    assert parquet_row(message, tmp_path / "shards" / "day=2" / "part-0.parquet", ran_in=tmp_path)["ad_id"] is None


def test_a_row_the_model_scores_nan_ends_the_command_naming_it_as_the_service_answers_it_500(
    tmp_path: Path, ctr_in_process: Ctr
) -> None:
    """A model with one NaN embedding row (the 6th row's ad): ``ctr score`` wrote NaN scores and exited 0 where
    /v1/score answers that row's request 500; now it ends naming the first row on it (the input's index), the
    model and the output, and writes nothing."""
    table = candidates_table()
    candidates = {"user_id": "u", "ad_id": table.column("ad_id").to_pylist(), "ad_price": 1.0}
    encoded = FeatureEncoder(SPEC).encode(candidates, table.num_rows)
    ad_rows = encoded.as_inputs()["categorical"][:, [f.name for f in SPEC.categorical].index("ad_id")]
    first = int(np.flatnonzero(ad_rows == ad_rows[5])[0])  # the first row on that embedding row (5 or before)

    def nan_row(weights: dict[str, np.ndarray]) -> None:
        weights["table"][ad_rows[5]] = np.nan

    repository = tmp_path / "models"
    publish_tiny_esmm(repository, edit=nan_row)
    pq.write_table(table, tmp_path / "candidates.parquet")
    done = ctr_in_process("score", "candidates.parquet", "--out", "scores.parquet", "-r", str(repository), cwd=tmp_path)
    assert one_error_line(done) == (
        f"error: row {first} of the input (candidates.parquet): model esmm:1 returned a non-finite score (pctr NaN "
        "or infinite) for it, which /v1/score answers 500 (a NaN or an infinity in the model's weights gives one): "
        "score with a version that has none"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates.parquet", "models"]  # no scores, no temporary
    with running_server(repository, tmp_path / "server.log", ctr_model="esmm") as (url, _):
        (_, body), *_ = [item for item in request_bodies(table) if first in item[0]]
        assert httpx.post(f"{url}/v1/score", json=body, timeout=30.0).status_code == 500


def test_a_feature_column_json_cannot_carry_is_refused_naming_it(
    repository: Path, tmp_path: Path, ctr_in_process: Ctr
) -> None:
    """A list, a struct or a time was refused as "not an object" for some row; bytes that are not UTF-8 said
    "Invalid UTF8 payload", naming no row, column or file. A column of such a type that is no feature is
    carried through as it is."""
    table = candidates_table()
    n = table.num_rows
    takes = "which a /v1/score request cannot carry: ctr score takes text (string, or binary holding UTF-8), "
    cases = [
        ("ad_price", pa.array([[1.0]] * n), "list<element: double>"),
        ("ad_id", pa.array([{"a": 1}] * n), "struct<a: int64>"),
        ("hour", pa.array([datetime.datetime(2024, 1, 1)] * n, pa.timestamp("us")), "timestamp[us]"),
    ]
    for name, values, arrow_type in cases:
        pq.write_table(table.set_column(table.column_names.index(name), name, values), tmp_path / "candidates.parquet")
        done = ctr_in_process("score", "candidates.parquet", "-r", str(repository), cwd=tmp_path)
        assert one_error_line(done).startswith(
            f"error: candidates.parquet: column {name!r}, a feature of the served models, is of type {arrow_type}, "
            + takes
        )
    ad_ids = [str(value).encode() for value in table.column("ad_id").to_pylist()]
    undecodable = table.set_column(3, "ad_id", pa.array([*ad_ids[:3], b"\xff\xfe", *ad_ids[4:]], pa.binary()))
    pq.write_table(undecodable, tmp_path / "candidates.parquet")
    done = ctr_in_process("score", "candidates.parquet", "-r", str(repository), cwd=tmp_path)
    assert one_error_line(done) == (
        "error: row 3 of the input (candidates.parquet): column 'ad_id' holds bytes that are not UTF-8 text "
        "(invalid start byte at byte 0); ctr score reads a binary feature as text"
    )
    carried = table.append_column("tags", pa.array([["a", "b"]] * n)).append_column(
        "shown", pa.array([datetime.date(2024, 1, 1)] * n)
    )
    pq.write_table(carried, tmp_path / "candidates.parquet")
    done = ctr_in_process("score", "candidates.parquet", "-r", str(repository), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    scored = pq.read_table(tmp_path / "scores.parquet")
    assert scored.select(["tags", "shown"]) == carried.select(["tags", "shown"])
    assert_same_rows(scored.select(table.column_names), table)


def replaced(table: pa.Table, **columns: pa.Array) -> pa.Table:
    """``table`` with the named columns' values replaced, in their places."""
    for name, values in columns.items():
        table = table.set_column(table.column_names.index(name), name, values)
    return table


def test_columns_of_other_writers_types_are_scored_as_the_trainer_reads_them(
    repository: Path, service: str, tmp_path: Path, ctr_in_process: Ctr
) -> None:
    """A warehouse's NUMBER(38, 0) ids, DuckDB's uuid and a boolean column train as integers, text and 0/1
    (``plain_columns``, ``column_array``), and ctr score reads them so: it read decimals as floats (2**53 + 1
    scored as 2**53, 2**60 + 1 refused as "read as a float"), refused the uuid as a type a request cannot carry
    and the booleans as JSON's ``true``. Its scores are the live service's for the values the trainer reads."""
    table = candidates_table(seed=4, sizes=[3, 2, 4])
    n = table.num_rows
    ad_ids = [3574, 2**53 + 1, 2**60 + 1, *range(7, 7 + n - 3)]
    users = [uuid.UUID(int=i % 3) for i in range(n)]
    hours = [i % 2 == 0 for i in range(n)]
    uuids = pa.ExtensionArray.from_storage(pa.uuid(), pa.array([user.bytes for user in users], pa.binary(16)))
    written = replaced(table, ad_id=pa.array(ad_ids, pa.decimal128(38, 0)), user_id=uuids, hour=pa.array(hours))
    pq.write_table(written, tmp_path / "candidates.parquet")
    as_trained = replaced(
        table,
        ad_id=pa.array(ad_ids, pa.int64()),
        user_id=pa.array([str(user) for user in users]),
        hour=pa.array([int(hour) for hour in hours]),
    )
    read = feature_columns(read_tables(tmp_path / "candidates.parquet", "impression log"), SPEC)
    assert {name: values.tolist() for name, values in read.items() if name != "ad_quality"} == {
        name: as_trained.column(name).to_pylist() for name in ("user_id", "hour", "ad_id", "ad_price")
    }
    done = ctr_in_process("score", "candidates.parquet", "--out", "scores.parquet", "-r", str(repository), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    scored = pq.read_table(tmp_path / "scores.parquet")
    assert scored.select(written.column_names) == pq.read_table(tmp_path / "candidates.parquet")  # as written
    assert_served_alike(service, as_trained, scored)


def test_version_picks_a_version_where_the_default_is_the_version_policy_s(tmp_path: Path, ctr_in_process: Ctr) -> None:
    """``--version N`` scores with version N; without it, the version the model's ``[serving]
    version_policy`` serves (here the pinned 1 of versions 1 and 2), as the help says (it said "newest")."""
    repository = tmp_path / "models"
    publish_tiny_esmm(repository, seed=0)
    publish_tiny_esmm(repository, seed=1)
    pq.write_table(candidates_table(), tmp_path / "candidates.parquet")
    scored = {}
    for version in ("1", "2"):
        out = f"v{version}.parquet"
        done = ctr_in_process(
            "score", "candidates.parquet", "--out", out, "-r", str(repository), "--version", version, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert scored_metadata(tmp_path / out)["models"]["ctr"]["version"] == int(version)
        scored[version] = pq.read_table(tmp_path / out).column("pctr").to_pylist()
    assert scored["1"] != scored["2"]
    (repository / "esmm" / "config.toml").write_text(
        "[serving]\nversion_policy = { specific = [1] }\n", encoding="utf-8"
    )
    done = ctr_in_process("score", "candidates.parquet", "--out", "pinned.parquet", "-r", str(repository), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "pinned.parquet").column("pctr").to_pylist() == scored["1"]
    helped = ctr("score", "--help", cwd=tmp_path)  # its own process: this one would render it at its width
    assert "version_policy" in helped.stdout and "newest that loads)" not in helped.stdout, helped.stdout


def test_one_row_is_said_as_one(repository: Path, tmp_path: Path, ctr_in_process: Ctr) -> None:
    """A file of one row in one request: the line said "scored 1 rows in 1 requests"."""
    pq.write_table(candidates_table().slice(0, 1), tmp_path / "candidates.parquet")
    done = ctr_in_process("score", "candidates.parquet", "--out", "one.parquet", "-r", str(repository), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("scored 1 row in 1 request (ctr esmm v1, ctcvr esmm v1): wrote one.parquet")


def test_a_retrieval_service_s_settings_score_nothing(tmp_path: Path) -> None:
    """``none`` in both roles (a retrieval service) leaves no role model to score with: said in one line."""
    settings = Settings(model_repository=tmp_path, ctr_model="none", ctcvr_model="none")
    with pytest.raises(ValueError, match=r"^nothing to score with: CTR_CTR_MODEL and CTR_CTCVR_MODEL are none$"):
        served_models(settings)


def test_an_out_that_would_be_read_as_candidates_or_is_not_parquet_is_refused(
    repository: Path, tmp_path: Path, ctr_in_process: Ctr
) -> None:
    """--out in the candidates folder: the second run read the first's scores as a shard ("already has a
    column 'pctr'"); --out the candidates file replaced it; --out y.csv wrote Parquet under a CSV name."""
    table = candidates_table()
    (tmp_path / "shards").mkdir()
    pq.write_table(table, tmp_path / "shards" / "part-0.parquet")
    cases = [
        (("shards", "--out", "shards/scores.parquet"), "--out shards/scores.parquet lies in the candidates folder"),
        (("shards/*.parquet", "--out", "shards/scores.parquet"), "--out shards/scores.parquet matches the candidates"),
        (("shards/part-0.parquet", "--out", "shards/part-0.parquet"), "--out shards/part-0.parquet is the candidates"),
        (("shards", "--out", "scores.csv"), "--out scores.csv: ctr score writes Parquet: name a .parquet file"),
        (("missing.parquet",), "no candidates file at missing.parquet"),
    ]
    for args, said in cases:
        done = ctr_in_process("score", *args, "-r", str(repository), cwd=tmp_path)
        assert one_error_line(done).startswith(f"error: {said}")
        assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
            "shards",
            "shards/part-0.parquet",
        ]
    assert_same_rows(pq.read_table(tmp_path / "shards" / "part-0.parquet"), table)


@needs_read_only_mount
def test_an_out_folder_on_a_read_only_mount_is_named_as_given(repository: Path, tmp_path: Path) -> None:
    """It said ``error: .../ro/.scores.parquet.32251.tmp: Read-only file system``: a name the user never gave."""
    pq.write_table(candidates_table(), tmp_path / "candidates.parquet")
    (tmp_path / "ro").mkdir()
    args = ("score", "candidates.parquet", "--out", "ro/scores.parquet", "-r", str(repository))
    done = ctr(*args, cwd=tmp_path, read_only=tmp_path / "ro")
    assert one_error_line(done) == "error: ro/scores.parquet: Read-only file system"
    assert list((tmp_path / "ro").iterdir()) == []


def test_requests_read_across_record_batches_and_files_score_alike(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of Hive-partitioned shards read four rows at a time: a request cut by a read goes on in the
    next; without a request_id, rows are scored CTR_MAX_CANDIDATES at a time."""
    settings = Settings(model_repository=repository, use_cuda=False)
    models = served_models(settings)
    table = candidates_table(seed=1)
    pq.write_table(table, tmp_path / "whole.parquet")
    score_file(str(tmp_path / "whole.parquet"), str(tmp_path / "whole_scores.parquet"), models, settings)  # as strings
    first, second = table.slice(0, 11), table.slice(11)  # request r2 (rows 4-10) stays in the first shard
    for day, part in (("1", first), ("2", second)):
        (tmp_path / "shards" / f"dt={day}").mkdir(parents=True)
        pq.write_table(part, tmp_path / "shards" / f"dt={day}" / "part-0.parquet")
    monkeypatch.setattr(offline_scores, "READ_ROWS", 4)
    sharded = score_file(tmp_path / "shards", tmp_path / "shard_scores.parquet", models, settings)
    assert (sharded.rows, sharded.requests) == (table.num_rows, len(REQUEST_SIZES))
    whole = pq.read_table(tmp_path / "whole_scores.parquet")
    by_shard = pq.read_table(tmp_path / "shard_scores.parquet")
    assert by_shard.column("dt").to_pylist() == ["1"] * 11 + ["2"] * (table.num_rows - 11)
    assert_same_rows(by_shard.drop_columns(["dt"]), whole)
    unnamed = table.drop_columns(["request_id"])
    pq.write_table(unnamed, tmp_path / "unnamed.parquet")
    small = Settings(model_repository=repository, use_cuda=False, max_candidates=10)
    counted = score_file(tmp_path / "unnamed.parquet", tmp_path / "unnamed_scores.parquet", models, small)
    assert counted.requests == -(-table.num_rows // 10)
    assert scored_metadata(tmp_path / "unnamed_scores.parquet")["request_column"] is None


NO_TORCH = WATCH_TORCH + textwrap.dedent(
    """
    from cli.main import app
    try:
        app(sys.argv[1:])
    except SystemExit as end:
        code = end.code
    print(json.dumps({"code": code, "torch_loaded": "torch" in sys.modules, "attempts": attempts}))
    """
)


def test_spark_s_int96_times_are_carried_through_as_written(repository: Path, tmp_path: Path) -> None:
    """Spark's legacy INT96 ``ts`` past 2262 overflowed to ~1915 in pyarrow's default nanosecond read."""
    settings = Settings(model_repository=repository, use_cuda=False)
    table = candidates_table(seed=2)
    written = [datetime.datetime(2300, 1, 1) + datetime.timedelta(seconds=i) for i in range(table.num_rows)]
    table = table.append_column("ts", pa.array(written, pa.timestamp("us")))
    pq.write_table(table, tmp_path / "spark.parquet", use_deprecated_int96_timestamps=True)
    score_file(tmp_path / "spark.parquet", tmp_path / "scores.parquet", served_models(settings), settings)
    assert pq.read_table(tmp_path / "scores.parquet").column("ts").to_pylist() == written


def test_scoring_a_file_imports_no_torch(repository: Path, tmp_path: Path) -> None:
    pq.write_table(candidates_table(), tmp_path / "candidates.parquet")
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, "score", "candidates.parquet", "-r", str(repository)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "CTR_USE_CUDA": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"code": 0, "torch_loaded": False, "attempts": []}
    assert (tmp_path / "scores.parquet").is_file()
