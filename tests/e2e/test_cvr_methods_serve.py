"""Any pCTCVR method fills the service's ``ctcvr`` role by configuration, through the same export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.support.direct_scores import GOOD, direct_scores
from tests.support.tiny_model import SPEC, publish_tiny_esmm
from training.export import export_checkpoint
from training.fitting.checkpoint import Checkpoint
from training.models.registry import build_model


@pytest.mark.parametrize(
    ("name", "kind", "params"),
    [("escm2_dr", "escm2", {"estimator": "dr"}), ("division", "division", {}), ("cvr_base", "cvr_base", {})],
)
def test_a_cvr_method_serves_the_ctcvr_role(tmp_path: Path, name: str, kind: str, params: dict) -> None:
    torch.manual_seed(0)
    params = {"embedding_dim": 4, "hidden": [8], **params}
    model = build_model(kind, SPEC, params)
    checkpoint = Checkpoint(name=name, kind=kind, model_params=params, spec=SPEC, state_dict=model.state_dict())
    export_checkpoint(checkpoint, tmp_path)
    publish_tiny_esmm(tmp_path)  # the ctr role stays with esmm
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", ctcvr_model=name, use_cuda=False)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/score", json=GOOD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["models"]["ctcvr"] == {"name": name, "version": 1}
    expected = direct_scores(tmp_path, name, 1)["pcvr"]  # the method's own pCVR; pctcvr = pctr * pcvr
    np.testing.assert_allclose([s["pcvr"] for s in body["scores"]], expected, atol=1e-7)
    assert all(s["pctcvr"] == s["pctr"] * s["pcvr"] for s in body["scores"])
