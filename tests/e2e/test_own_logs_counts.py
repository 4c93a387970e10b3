"""A user's own CSV log of heavy-tailed counts through the README's "Your own logs" path with today's options:
`ctr spec infer` (log1p proposed), `ctr new` with keep_best_epoch and SparseAdam, `ctr train` on the .csv.gz,
`ctr export`, then `ctr score` offline and `ctr serve`'s /v1/score scoring the same rows alike and refusing a
negative count in the same words."""

from __future__ import annotations

import json

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from typer.testing import CliRunner, Result

from cli.main import app
from reports.count_transform_log import COUNT_TAILS, impression_log
from tests.support.server import running_server

NEGATIVE_COUNT = "feature 'clicks_30d': must be at least 0 (transform = \"log1p\" takes counts)"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_counts_log_infer_train_export_score_and_serve(tmp_path):
    with pa.CompressedOutputStream(str(tmp_path / "log.csv.gz"), "gzip") as out:
        pacsv.write_csv(impression_log("log", seed=0, rows=3_000), out)
    models, work = str(tmp_path / "models"), str(tmp_path / "work")
    spec = tmp_path / "spec.toml"
    assert invoke("spec", "infer", "--logs", str(tmp_path / "log.csv.gz"), "--out", str(spec)).exit_code == 0
    assert spec.read_text(encoding="utf-8").count('\ntransform = "log1p"') == len(COUNT_TAILS)
    assert invoke("new", "cnt", "--kind", "esmm", "--spec", str(spec), "-r", models).exit_code == 0
    config = tmp_path / "models" / "cnt" / "config.toml"  # as the user would: small, the best epoch, SparseAdam
    text = config.read_text(encoding="utf-8")
    edits = {
        "hidden = [360, 200, 80]": "hidden = [16, 8]",
        "keep_best_epoch = false": "keep_best_epoch = true",
        'embedding_optimizer = "adam"': 'embedding_optimizer = "sparse_adam"\nepochs = 2\nbatch_size = 256',
    }
    for written, wanted in edits.items():  # a line ctr new stopped writing would leave the run untested
        assert written in text
        text = text.replace(written, wanted)
    config.write_text(text, encoding="utf-8")
    trained = invoke("train", "cnt", "--logs", str(tmp_path / "log.csv.gz"), "--spec", str(spec), "--no-progress",
                     "-r", models, "--work-dir", work, "--export")  # fmt: skip
    assert trained.exit_code == 0, trained.output + repr(trained.exception)
    assert '"kept_epoch"' in trained.output
    recorded = json.loads((tmp_path / "models" / "cnt" / "1" / "model.json").read_text(encoding="utf-8"))
    assert recorded["training"]["config"]["training"]["embedding_optimizer"] == "sparse_adam"

    rows = [
        {"site": "site3", "device": "device1", "views_7d": 250, "clicks_30d": 4, "sessions_30d": 0},
        {"site": "site9", "device": "device0", "views_7d": 0, "clicks_30d": 0, "sessions_30d": 90_000},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "candidates.parquet")
    roles = ["-r", models, "--ctr-model", "cnt", "--ctcvr-model", "cnt"]
    scored = invoke("score", str(tmp_path / "candidates.parquet"), "--out", str(tmp_path / "scores.parquet"), *roles)
    assert scored.exit_code == 0, scored.output + repr(scored.exception)
    offline = pq.read_table(tmp_path / "scores.parquet").select(["pctr", "pctcvr", "pcvr"]).to_pylist()
    pq.write_table(pa.Table.from_pylist([rows[0], {**rows[1], "clicks_30d": -1}]), tmp_path / "negative.parquet")
    refused = invoke("score", str(tmp_path / "negative.parquet"), "--out", str(tmp_path / "refused.parquet"), *roles)
    assert refused.exit_code != 0
    assert f"row 1 of the input ({tmp_path / 'negative.parquet'}): {NEGATIVE_COUNT}" in str(refused.exception)

    with running_server(tmp_path / "models", tmp_path / "serve.log", ctr_model="cnt", ctcvr_model="cnt") as (url, _):
        served = [
            httpx.post(f"{url}/v1/score", json={"context": row, "candidates": [{}]}).json()["scores"][0] for row in rows
        ]
        negative = httpx.post(f"{url}/v1/score", json={"context": {**rows[1], "clicks_30d": -1}, "candidates": [{}]})
        missing = httpx.post(f"{url}/v1/score", json={"context": {**rows[1], "views_7d": None}, "candidates": [{}]})
    assert served == offline
    assert (negative.status_code, negative.json()["error"]) == (422, NEGATIVE_COUNT)
    assert missing.status_code == 422 and "views_7d" in missing.json()["error"]
