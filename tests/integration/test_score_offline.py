"""`ctr score`: a Parquet file of candidates scored offline as the live service scores them.

The same rows go to the real service (uvicorn on a loopback port), one request per request_id, one at a
time, so that each runs alone in its batch; the file's scores must be the service's bit for bit. A row the
service refuses ends the command with one `error:` line naming it, and nothing is written; the command
imports no torch (the serving image has none).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.score import offline
from service.score.offline import score_file, scored_metadata, served_models
from service.settings import Settings
from tests.service.tiny_model import publish_tiny_esmm
from tests.support.server import running_server
from tests.support.torch_watch import WATCH_TORCH

ROOT = Path(__file__).resolve().parents[2]
CTR = [sys.executable, "-c", "from cli.main import app; app()"]
REQUEST_SIZES = [1, 3, 7, 40, 2, 33]  # 32 candidates and more are encoded where checked (score/pipeline.py)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    return root


def candidates_table(seed: int = 0) -> pa.Table:
    """Requests of the tiny model's features as a data scientist's table holds them: an integer column with
    gaps written by pandas (float64 with NaN: ``hour``), an optional numeric feature with nulls, a label."""
    rng = np.random.default_rng(seed)
    request_id = np.repeat(np.arange(len(REQUEST_SIZES)), REQUEST_SIZES)
    n = request_id.size
    hour = rng.integers(0, 24, n).astype(np.float64)
    hour[rng.random(n) < 0.2] = np.nan
    quality = pa.array([None if q < 0.15 else float(q) for q in rng.random(n)], pa.float64())
    return pa.table(
        {
            "request_id": [f"r{i}" for i in request_id],
            "user_id": [f"u{i}" for i in rng.integers(0, 20, len(REQUEST_SIZES))[request_id]],
            "hour": hour,
            "ad_id": rng.integers(0, 500, n),
            "ad_price": rng.lognormal(2.0, 1.0, n),
            "ad_quality": quality,
            "click": rng.integers(0, 2, n),  # not a feature: carried through, as any other column
        }
    )


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


def ctr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "CTR_USE_CUDA": "false"}
    return subprocess.run([*CTR, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_file_s_scores_are_the_live_service_s_bit_for_bit(repository: Path, tmp_path: Path) -> None:
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
    with running_server(repository, tmp_path / "server.log", ctr_model="esmm") as (url, _):
        for rows, body in request_bodies(table):  # one at a time: each request alone in its batch
            response = httpx.post(f"{url}/v1/score", json=body, timeout=30.0)
            assert response.status_code == 200, response.text
            for row, served in zip(rows, response.json()["scores"], strict=True):
                for name in ("pctr", "pctcvr", "pcvr"):
                    assert scored.column(name)[row].as_py() == served[name], (row, name)


def test_a_row_the_service_refuses_ends_the_command_naming_it_and_writes_nothing(
    repository: Path, tmp_path: Path
) -> None:
    """The same refusal, in the same words, as /v1/score's 422 for that row's request; the row is its index
    in the input (here the 3rd row of the second request: row 3)."""
    table = candidates_table()
    ad_ids = table.column("ad_id").to_pylist()
    cases = [
        ([*ad_ids[:3], None, *ad_ids[4:]], "feature 'ad_id' is required but missing"),
        (
            [*map(str, ad_ids[:3]), "a" * 2000, *map(str, ad_ids[4:])],
            "candidate feature 'ad_id' is longer than 1024 characters",
        ),
        ([*ad_ids[:3], 2.5, *ad_ids[4:]], "feature 'ad_id': must be a string or an integer, not 2.5"),
    ]
    with running_server(repository, tmp_path / "server.log", ctr_model="esmm") as (url, _):
        for ad_id, said in cases:
            broken = table.set_column(3, "ad_id", pa.array(ad_id))
            pq.write_table(broken, tmp_path / "candidates.parquet")
            done = ctr("score", "candidates.parquet", "--out", "scores.parquet", "-r", str(repository), cwd=tmp_path)
            assert done.returncode == 2, done.stderr
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert errors == [f"error: row 3 of the input (candidates.parquet): {said}"], done.stderr
            assert done.stderr.strip().splitlines()[-1] == errors[0] and "Traceback" not in done.stderr
            assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates.parquet", "server.log"]  # no temporary
            (_, body), *_ = [item for item in request_bodies(broken) if 3 in item[0]]
            response = httpx.post(f"{url}/v1/score", json=body, timeout=30.0)
            assert response.status_code == 422 and response.json()["error"] == said, response.text


def test_requests_read_across_record_batches_and_files_score_alike(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of Hive-partitioned shards read four rows at a time: a request cut by a read goes on in the
    next; without a request_id, rows are scored CTR_MAX_CANDIDATES at a time."""
    settings = Settings(model_repository=repository, use_cuda=False)
    models = served_models(settings)
    table = candidates_table(seed=1)
    pq.write_table(table, tmp_path / "whole.parquet")
    score_file(tmp_path / "whole.parquet", tmp_path / "whole_scores.parquet", models, settings)
    first, second = table.slice(0, 11), table.slice(11)  # request r2 (rows 4-10) stays in the first shard
    for day, part in (("1", first), ("2", second)):
        (tmp_path / "shards" / f"dt={day}").mkdir(parents=True)
        pq.write_table(part, tmp_path / "shards" / f"dt={day}" / "part-0.parquet")
    monkeypatch.setattr(offline, "READ_ROWS", 4)
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
    import datetime

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
