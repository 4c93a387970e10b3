"""The service must never import torch, not even through a dependency: checked in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.checkout import ROOT
from tests.support.torch_watch import WATCH_TORCH

SCRIPT = WATCH_TORCH + textwrap.dedent(
    """
    from fastapi.testclient import TestClient
    from service.app import create_app
    from service.settings import Settings

    with TestClient(create_app(Settings(model_repository=sys.argv[1], ctr_model="esmm", use_cuda=False))) as client:
        response = client.post("/v1/score", json={
            "context": {"user_id": "u"}, "candidates": [{"ad_id": 1, "ad_price": 2.0}],
        })
    print(json.dumps({"status": response.status_code, "torch_loaded": "torch" in sys.modules,
                      "attempts": attempts}))
    """
)


def test_serving_a_request_imports_no_torch(repository: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(repository)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"status": 200, "torch_loaded": False, "attempts": []}
