"""A served model with a ``transform = "log1p"`` count feature, over a real uvicorn: a logged row read from
Parquet by the trainer and the same row sent as JSON are one tensor, so the service's scores are ONNX Runtime's
on the training tensors, bit for bit; a negative count is a 422 naming the feature and the rule."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq

from common.encoder import FeatureEncoder, fit_statistics
from common.features import Feature, FeatureSpec
from common.repository import MODEL_FILE, version_dir
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm
from training.fitting.dataset import ImpressionTensors
from training.logs.reading import read_logs

SPEC = FeatureSpec(
    (
        Feature("user_id", "categorical", "context", buckets=50),
        Feature("ad_id", "categorical", "candidate", buckets=100),
        Feature("ad_views", "numeric", "candidate", required=False, default=2.0, transform="log1p"),
        Feature("ad_price", "numeric", "candidate"),
    )
)


def test_a_log1p_count_is_served_as_it_was_trained_and_a_negative_one_refused(tmp_path: Path) -> None:
    views = [0, 3, None, 120, 90_000, 1]
    log = pa.table(
        {
            "user_id": ["u1"] * 6,
            "ad_id": [f"a{i}" for i in range(6)],
            "ad_views": pa.array(views, pa.int64()),
            "ad_price": [1.0, 2.5, 3.0, 0.5, 9.0, 4.0],
            "position": [1] * 6,
            "click": [0, 1, 0, 0, 1, 0],
            "conversion": [0] * 6,
        }
    )
    pq.write_table(log, tmp_path / "log.parquet")
    table = read_logs(tmp_path / "log.parquet", SPEC)
    spec = fit_statistics(SPEC, {name: table.column(name).to_numpy() for name in table.column_names})
    assert spec.stats["ad_views"].high == np.log1p(90_000)
    training = ImpressionTensors.from_table(table, FeatureEncoder(spec)).tensors
    repository = tmp_path / "models"
    publish_tiny_esmm(repository, spec=spec)
    session = ort.InferenceSession(str(version_dir(repository, "esmm", 1) / MODEL_FILE))
    inputs = {name: training[name].numpy() for name in ("categorical", "numeric")}
    expected = session.run(["pctr"], inputs)[0].astype(np.float64).tolist()
    body = {
        "context": {"user_id": "u1"},
        "candidates": [
            {"ad_id": f"a{i}", "ad_price": price, **({} if count is None else {"ad_views": count})}
            for i, (count, price) in enumerate(zip(views, log.column("ad_price").to_pylist(), strict=True))
        ],
    }
    with running_server(repository, tmp_path / "server.log", ctr_model="esmm", batching="false") as (url, _):
        served = httpx.post(f"{url}/v1/score", json=body, timeout=10.0)
        assert served.status_code == 200, served.text
        assert [score["pctr"] for score in served.json()["scores"]] == expected
        body["candidates"][3]["ad_views"] = -1
        refused = httpx.post(f"{url}/v1/score", json=body, timeout=10.0)
        alone = httpx.post(f"{url}/v1/score", json={**body, "candidates": body["candidates"][3:4]}, timeout=10.0)
    rule = "feature 'ad_views': must be at least 0 (transform = \"log1p\" takes counts)"
    assert (refused.status_code, refused.json()) == (422, {"error": rule, "field": "candidates[3].ad_views"})
    assert (alone.status_code, alone.json()) == (422, {"error": rule, "field": "candidates[0].ad_views"})
