"""``/v1/score``'s ``versions`` (service/score/versions.py): a request picks which served version of a role
model scores it (an online experiment's arm); ``/v1/models`` and ``/metrics`` name each version by the sha256
of its model.onnx.

Before, every answer came from the newest served version: loading a new one beside the old moved all the
traffic to it, and a body naming a version was refused as an unknown field."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from common.encoder import FeatureEncoder
from common.repository import MODEL_FILE, version_dir
from service.app import create_app
from service.settings import Settings
from tests.support.direct_scores import GOOD, direct_scores
from tests.support.tiny_model import SPEC, publish_tiny_esmm
from tests.support.v2_bodies import infer_body

LOGGED = {"regime": "logged"}
SLOT1 = {"regime": "slot1", "ctr_ratios": [1.0, 0.5]}


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """esmm versions 1, 2 and 3, each its own weights; ``latest = 2`` serves 2 and 3."""
    root = tmp_path_factory.mktemp("models")
    for seed in range(3):
        publish_tiny_esmm(root, seed=seed)
    (root / "esmm" / "config.toml").write_text("[serving]\nversion_policy = { latest = 2 }\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def client(repository: Path) -> Iterator[TestClient]:
    settings = Settings(model_repository=repository, ctr_model="esmm", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        yield client


def scored(client: TestClient, versions: object) -> dict:
    response = client.post("/v1/score", json={**GOOD, "versions": versions})
    assert response.status_code == 200, response.text
    return response.json()


def test_without_versions_the_newest_scores_and_a_pinned_version_scores_as_itself(
    client: TestClient, repository: Path
) -> None:
    newest = client.post("/v1/score", json=GOOD).json()
    assert newest["models"] == {"ctr": {"name": "esmm", "version": 3}, "ctcvr": {"name": "esmm", "version": 3}}
    assert scored(client, None) == scored(client, {}) == newest  # null or nothing named: no pin
    assert scored(client, {"esmm": 3}) == newest
    pinned = scored(client, {"esmm": 2})
    assert pinned["models"] == {"ctr": {"name": "esmm", "version": 2}, "ctcvr": {"name": "esmm", "version": 2}}
    expected = direct_scores(repository, version=2)
    for key in ("pctr", "pcvr"):  # both roles from version 2: no mixing within a request
        np.testing.assert_allclose([s[key] for s in pinned["scores"]], expected[key], rtol=1e-6)
    assert [s["pctr"] for s in pinned["scores"]] != [s["pctr"] for s in newest["scores"]]


def test_a_pinned_version_answers_as_v2_infer_of_that_version(client: TestClient) -> None:
    body = {"candidates": [{"user_id": "u_1", "ad_id": "ad_3", "ad_price": 2.5}]}
    pinned = client.post("/v1/score", json={**body, "versions": {"esmm": 2}}).json()["scores"][0]
    inputs = FeatureEncoder(SPEC).encode({"user_id": ["u_1"], "ad_id": ["ad_3"], "ad_price": [2.5]}, 1).as_inputs()
    infer = infer_body(inputs["categorical"].tolist(), inputs["numeric"].tolist())
    answer = client.post("/v2/models/esmm/versions/2/infer", json=infer).json()
    outputs = {output["name"]: output["data"][0] for output in answer["outputs"]}
    assert (pinned["pctr"], pinned["pcvr"]) == (outputs["pctr"], outputs["pcvr"])


def test_a_version_not_served_is_a_404_naming_the_served_ones(client: TestClient) -> None:
    for version in (1, 0, 7):  # 1 is on disk, but its policy does not serve it
        response = client.post("/v1/score", json={**GOOD, "versions": {"esmm": version}})
        assert response.status_code == 404, (version, response.text)
        assert response.json() == {
            "error": f"model 'esmm' version {version} is not served (served versions: [2, 3])",
            "field": "versions.esmm",
        }


def test_a_model_that_fills_no_role_is_a_422_naming_the_role_models(client: TestClient) -> None:
    response = client.post("/v1/score", json={**GOOD, "versions": {"esmm": 2, "esam": 1}})
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "model 'esam' fills no role of this service; its role models are ['esmm']",
        "field": "versions.esam",
    }


def test_a_whole_number_float_names_the_version_it_is(client: TestClient) -> None:
    """Jackson (a double field) and RapidJSON write version 2 as ``2.0``: it names version 2, as ``21.0`` is
    ``21`` for a categorical feature (``whole_number``); it was a 422, "not '2.0'"."""
    body = orjson.dumps(GOOD)[:-1] + b', "versions": {"esmm": 2.0}}'
    response = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json() == scored(client, {"esmm": 2})
    missing = client.post(
        "/v1/score", content=body.replace(b"2.0}", b"1e0}"), headers={"content-type": "application/json"}
    )
    assert missing.status_code == 404 and missing.json()["error"].startswith("model 'esmm' version 1 is not served")


@pytest.mark.parametrize("version", ["2", True, 2.5, -1, -1.0, 2.0**64, None, [2], {"v": 2}])
def test_a_version_that_is_no_non_negative_integer_is_a_422(client: TestClient, version: object) -> None:
    response = client.post("/v1/score", json={**GOOD, "versions": {"esmm": version}})
    assert response.status_code == 422, (version, response.text)
    assert response.json()["field"] == "versions.esmm"
    assert response.json()["error"].startswith("versions.esmm must be a non-negative integer version, not ")


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        ("1", 'the string "1"'),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        ("x" * 60, 'the string "' + "x" * 36 + "..."),
    ],
)
def test_the_422_shows_the_version_sent_once_quoted_once(client: TestClient, version: object, shown: str) -> None:
    """Its JSON text alone: the repr of that text quoted a string twice (``not '"1"'``), and the rest once too many
    (``not 'true'``)."""
    response = client.post("/v1/score", json={**GOOD, "versions": {"esmm": version}})
    assert response.json() == {
        "error": f"versions.esmm must be a non-negative integer version, not {shown}",
        "field": "versions.esmm",
    }


@pytest.mark.parametrize("versions", [2, "esmm", [["esmm", 2]]])
def test_versions_that_are_no_object_are_a_422(client: TestClient, versions: object) -> None:
    response = client.post("/v1/score", json={**GOOD, "versions": versions})
    assert response.status_code == 422, (versions, response.text)
    assert response.json() == {
        "error": "versions must be an object of model name -> served version number",
        "field": "versions",
    }


def test_models_and_metrics_name_each_version_by_its_sha256(client: TestClient, repository: Path) -> None:
    """A version number is per repository ("esmm v1" is another model on each machine): the sha256 of its
    model.onnx names it everywhere."""
    sha256 = {
        str(v): hashlib.sha256((version_dir(repository, "esmm", v) / MODEL_FILE).read_bytes()).hexdigest()
        for v in (2, 3)
    }
    (entry,) = client.get("/v1/models").json()["models"]
    assert (entry["version"], entry["sha256"], entry["version_sha256"]) == (3, sha256["3"], sha256)
    text = client.get("/metrics").text
    for version, digest in sha256.items():
        assert (
            f'ctr_model_info{{model="esmm",version="{version}",provider="CPUExecutionProvider",sha256="{digest}"}} 1'
            in text
        )


def test_a_pinned_version_whose_regime_differs_from_the_other_role_model_is_a_422(tmp_path: Path) -> None:
    """Two role models: ctr version 2 pairs with esmm's regime, version 1 does not; served together (the
    conflict is checked for the newest), pinning version 1 would serve pctr and pcvr for different slots."""
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=SLOT1)
    publish_tiny_esmm(tmp_path, name="ctr", outputs=("pctr",), position=LOGGED)
    (tmp_path / "ctr" / "config.toml").write_text("[serving]\nversion_policy = { latest = 2 }\n", encoding="utf-8")
    publish_tiny_esmm(tmp_path, name="esmm", position=LOGGED)
    settings = Settings(model_repository=tmp_path, ctr_model="ctr", ctcvr_model="esmm", use_cuda=False)
    with TestClient(create_app(settings)) as client:
        assert scored(client, {"ctr": 2, "esmm": 1})["models"]["ctr"] == {"name": "ctr", "version": 2}
        response = client.post("/v1/score", json={**GOOD, "versions": {"ctr": 1}})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "versions"
        assert response.json()["error"].startswith("the versions named cannot score together: position regimes differ")
