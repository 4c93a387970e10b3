"""``ctr_model_training_output_mean``: each served version's outputs' means on the validation rows at training,
from its model.json, the baseline the served mean (output sum over inference count) is compared to; the logged
CTR is not one (the model serves debiased slot-1 pCTR). A model.json exported before the means were recorded
loads and serves with no such series."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.metrics import Metrics
from service.settings import Settings
from tests.support.metrics import series
from tests.support.score_bodies import SEVEN_CANDIDATES
from tests.support.tiny_model import publish_tiny_esmm

NAME = "ctr_model_training_output_mean"
MEANS = {"pctr_mean": 0.0731234567891, "pcvr_mean": 0.12, "pctcvr_mean": 0.0091, "ctr_auc": 0.7}


def test_a_version_s_training_means_are_a_gauge_and_an_older_model_json_serves_without_one(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path, seed=0)  # exported before the means were recorded
    settings = Settings(model_repository=tmp_path, ctr_model="esmm", use_cuda=False, admin_token="t" * 16)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/score", json=SEVEN_CANDIDATES).status_code == 200
        text = client.get("/metrics").text
        assert f"# TYPE {NAME} gauge" in text and series(text, NAME, 1) == {}
        publish_tiny_esmm(tmp_path, seed=5, metrics=MEANS)
        headers = {"authorization": "Bearer " + "t" * 16}
        assert client.post("/v2/repository/models/esmm/load", headers=headers).status_code == 200
        assert client.post("/v1/score", json=SEVEN_CANDIDATES).json()["models"]["ctr"]["version"] == 2
        means = series(client.get("/metrics").text, NAME, 2)
    assert means == {"pctr": 0.0731234567891, "pcvr": 0.12, "pctcvr": 0.0091}  # in full, AUC not among them


def test_training_means_travel_between_worker_processes_and_go_with_the_version() -> None:
    mine, sibling = Metrics(), Metrics()
    sibling.model("esmm", 3, {"provider": "CPUExecutionProvider", "sha256": "ab"}, {"pctr": 0.07})
    mine.add(sibling.to_dict())
    assert 'ctr_model_training_output_mean{model="esmm",version="3",output="pctr"} 0.07' in mine.render(
        {}, [("esmm", 3)], {}
    )
    mine.forget(("esmm", 3))
    assert "version=" not in mine.render({}, [("esmm", 3)], {}).partition(NAME)[2].partition("# HELP")[0]
