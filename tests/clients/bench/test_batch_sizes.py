"""``ctr bench batch-sizes``: real ONNX Runtime runs of a published model at each batch size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clients.bench.batch_sizes import _rows, measure, table
from tests.support.tiny_model import publish_tiny_esmm


def _bodies(candidates: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "context": {"user_id": f"u{i}"},
                "candidates": [{"ad_id": f"a{j}", "ad_price": 1.0 + j} for j in range(candidates)],
            }
        ).encode()
        for i in range(3)
    ]


def test_each_size_is_run_and_its_cost_per_row_derived(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path)
    report = measure(tmp_path, "esmm", _bodies(7), sizes=(1, 4, 16), seconds=0.02, rounds=2)
    assert [r["rows"] for r in report["sizes"]] == [1, 4, 16]
    for r in report["sizes"]:
        assert len(r["us_per_run_rounds"]) == 2
        assert r["us_per_row"] == pytest.approx(r["us_per_run"] / r["rows"], abs=0.06)  # each rounded
    assert min(r["per_row_vs_cheapest"] for r in report["sizes"]) == 1.0
    assert report["knee_rows"] in (1, 4, 16)
    assert "per row vs cheapest" in table(report)


def test_batches_larger_than_the_requests_repeat_their_rows() -> None:
    inputs = [{"x": np.arange(3)}, {"x": np.arange(10, 12)}]
    rows = _rows(inputs, 9)
    assert rows["x"].tolist() == [0, 1, 2, 10, 11, 0, 1, 2, 10, 11]
