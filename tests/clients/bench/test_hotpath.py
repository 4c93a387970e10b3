"""``ctr bench hotpath``'s driver: the real app, models and batcher, driven without HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from clients.bench.hotpath import hot_path
from tests.support.tiny_model import publish_tiny_esmm


def test_every_request_is_answered_and_its_cpu_counted(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path)
    bodies = [
        json.dumps({"context": {"user_id": f"u{i}"}, "candidates": [{"ad_id": "a", "ad_price": 1.0}] * n}).encode()
        for i, n in enumerate((1, 3, 20))
    ]
    report = hot_path(tmp_path, "esmm", bodies, 60, 4, tune_gc=False)  # the test process keeps its gc
    assert report["statuses"] == {"200": 60}
    assert report["cpu_us_per_request"] >= report["event_loop_cpu_us_per_request"] > 0
