"""A repository as operators leave it: manifests of the wrong types, directories that are no versions, and
versions refused before, met by a start, by polling and by an admin load (real ONNX sessions)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.repository import MANIFEST_FILE, MODEL_FILE, version_dir, versions
from service.models import loader
from service.models.config import VersionPolicy
from service.models.refusal import Refusal
from service.settings import Settings
from tests.support.app_client import AUTH, BODY, app_client, make_repository
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually


def edit_manifest(root: Path, number: int, **values: Any) -> None:
    path = version_dir(root, "esmm", number) / MANIFEST_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def until(condition: Callable[[], bool], what: str) -> None:
    eventually(condition, 10, what)


def publish_corrupted(root: Path, staging: Path, seed: int) -> int:
    """A version whose model.onnx fails its checksum, made whole under ``staging`` (on the same file system)
    and renamed into place: polling never sees it good (corrupted after publishing, a poll between the two
    served it)."""
    version = publish_tiny_esmm(staging, seed=seed)
    (version_dir(staging, "esmm", version) / MODEL_FILE).write_bytes(b"\0")
    number = max(versions(root, "esmm")) + 1
    edit_manifest(staging, version, version=number)
    os.rename(version_dir(staging, "esmm", version), version_dir(root, "esmm", number))
    return number


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"constants": None}, "constants = null: expected a table, not null"),
        ({"feature_spec": []}, "feature_spec = []: expected a table, not a list"),
        ({"position": "slot1"}, 'position = "slot1": expected a table, not a string'),
        ({"files": [1, 2]}, "files = [1, 2]: expected a table, not a list"),
        ({"files": {"a.npy": 3}}, "files['a.npy'] must be a table of settings, not 3"),
        ({"version": "2"}, 'version = "2": expected an integer, not a string'),
        ({"inputs": [3]}, "inputs = [3]: expected a list of values of a table"),
    ],
)
def test_a_manifest_of_the_wrong_types_is_refused_and_the_version_before_it_serves(
    tmp_path: Path, values: dict[str, Any], reason: str
) -> None:
    """``"constants": null`` in the newest model.json was a TypeError past the loader's checks: the start
    failed ("Application startup failed") with a good version beside it, each poll logged a traceback, and
    an admin load answered 500."""
    root = make_repository(tmp_path, 2)
    edit_manifest(root, 2, **values)
    with app_client(root) as client:
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post("/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 1
        index = client.post("/v2/repository/index", headers=AUTH).json()
        assert index[1]["version"] == "2" and index[1]["state"] == "UNAVAILABLE"
        assert index[1]["reason"].startswith(f"model.json is malformed: {reason}"), index[1]["reason"]
        response = client.post("/v2/repository/models/esmm/load", headers=AUTH)
        assert response.status_code == 409 and reason in response.json()["error"], response.text


def test_only_directories_named_as_a_version_are_versions(tmp_path: Path) -> None:
    """``012`` was version 12 (whose directory ``12`` the loader then found missing), ``٣`` (an Arabic-Indic
    digit) version 3, and a 20-digit name a version served and answered with 500s (orjson's 64 bits)."""
    root = make_repository(tmp_path, 1)
    for name in ("012", "٣", "0", "1" * 19, "99999999999999999999", "-5", " 7", "abc"):
        shutil.copytree(version_dir(root, "esmm", 1), root / "esmm" / name)
    shutil.copytree(version_dir(root, "esmm", 1), root / "esmm" / ("9" * 18))
    edit_manifest(root, int("9" * 18), version=int("9" * 18))
    assert versions(root, "esmm") == [1, int("9" * 18)]
    with app_client(root) as client:
        assert client.get("/v2/models/esmm").json()["versions"] == ["9" * 18]
        assert client.get(f"/v2/models/esmm/versions/{'9' * 18}/ready").status_code == 200
        assert client.post("/v1/score", json=BODY).status_code == 200
        assert client.get("/v1/models").status_code == 200
    with pytest.raises(ValueError, match="has a version of 18 digits: no next version"):
        publish_tiny_esmm(root)
    assert versions(root, "esmm") == [1, int("9" * 18)]


def test_a_polled_load_passes_over_the_versions_refused_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Polling leaves a refused version alone while its files stay as they were; a load polling began for
    another reason (the served version deleted) re-verified, logged and counted every one of them again on
    its way down to an older version. An admin load still tries them all."""
    caplog.set_level(logging.INFO)

    def refusals(version: int) -> int:
        return sum(r.getMessage().startswith(f"model esmm version {version} refused") for r in caplog.records)

    def counted() -> str:
        return next(
            line
            for line in client.get("/metrics").text.splitlines()
            if line.startswith('ctr_model_version_refusals_total{model="esmm"}')
        )

    root = make_repository(tmp_path / "models", 1)
    with app_client(root, poll_interval_s=0.1) as client:
        assert [publish_corrupted(root, tmp_path / f"staging-{seed}", seed) for seed in (5, 6)] == [2, 3]
        until(lambda: refusals(2) == refusals(3) == 1, "versions 2 and 3 not refused")
        assert all("model.onnx sha256" in r.getMessage() for r in caplog.records if " refused: " in r.getMessage())
        publish_tiny_esmm(root, seed=7)  # version 4, good
        until(lambda: client.get("/v2/models/esmm").json()["versions"] == ["4"], "version 4 not served")
        shutil.rmtree(version_dir(root, "esmm", 4))
        until(lambda: client.get("/v2/models/esmm").json()["versions"] == ["1"], "version 1 not served again")
        assert (refusals(2), refusals(3)) == (1, 1)
        assert counted() == 'ctr_model_version_refusals_total{model="esmm"} 2'
        index = client.post("/v2/repository/index", headers=AUTH).json()
        assert [(e["version"], e["state"]) for e in index] == [
            ("1", "READY"),
            ("2", "UNAVAILABLE"),
            ("3", "UNAVAILABLE"),
        ]
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 409
        assert (refusals(2), refusals(3)) == (2, 2)


def test_a_version_whose_load_fails_unforeseen_is_refused_and_the_next_older_one_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in one version's load (an error none of the checks raises) stopped the walk and, at a start,
    the service; it is that version's refusal, with its traceback logged."""
    root = make_repository(tmp_path, 2)
    settings = Settings(model_repository=root, ctr_model="esmm", use_cuda=False)
    load_version = loader.load_version

    def failing_on_version_2(root: Path, name: str, version: int, *args: Any) -> Any:
        if version == 2:
            raise AttributeError("'list' object has no attribute 'items'")
        return load_version(root, name, version, *args)

    monkeypatch.setattr(loader, "load_version", failing_on_version_2)
    refused: dict[int, Refusal] = {}
    chosen = loader.load_versions(settings, "esmm", VersionPolicy(), refused=refused)
    assert list(chosen) == [1]
    assert refused[2].why == "unexpected error while loading: AttributeError: 'list' object has no attribute 'items'"
    with pytest.raises(loader.ModelLoadError, match=r"\(refused before and unchanged \[2, 1\]; version 2: unexpected"):
        loader.load_versions(settings, "esmm", VersionPolicy(), refused_before={**refused, 1: refused[2]})


def test_a_model_directory_that_cannot_be_listed_is_said_not_a_bare_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model folder the service may not list (a mounted volume's permissions; as root, here, a listing
    made to fail) raised PermissionError past every catch: the start stopped, an admin load answered 500."""
    root = make_repository(tmp_path / "models", 1)
    listing = Path.iterdir

    def refusing(path: Path):
        if path == root / "esmm":
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    with app_client(root) as client:
        publish_corrupted(root, tmp_path / "staging", 5)  # version 2, refused by the load below
        assert client.post("/v2/repository/models/esmm/load", headers=AUTH).status_code == 409
        monkeypatch.setattr(Path, "iterdir", refusing)
        response = client.post("/v2/repository/models/esmm/load", headers=AUTH)
        assert response.status_code == 400, response.text
        assert "the directory of model 'esmm' cannot be listed: Permission denied" in response.json()["error"]
        assert response.json()["error"].endswith("(serving versions [1])")
        served, refused = client.post("/v2/repository/index", headers=AUTH).json()
        unlisted = "its directory cannot be listed: Permission denied"
        assert served == {"name": "esmm", "version": "1", "state": "READY", "reason": unlisted}
        assert refused["version"] == "2" and "sha256" in refused["reason"]  # kept, as the manager keeps it
        assert client.post("/v1/score", json=BODY).status_code == 200
    monkeypatch.setattr(Path, "iterdir", refusing)
    with app_client(root) as client:  # a start: not ready, saying why, where it stopped
        assert client.get("/v2/health/ready").status_code == 503
        assert "cannot be listed" in client.get("/v1/models").text


def test_the_index_says_unreadable_serving_settings_without_polling(tmp_path: Path) -> None:
    """The note was the polling worker's alone: with polling off, or another worker answering, none."""
    root = make_repository(tmp_path, 1)
    with app_client(root) as client:
        (root / "esmm" / "config.toml").write_text('kind = "esmm"\n[serving\n')
        (entry,) = client.post("/v2/repository/index", headers=AUTH).json()
        assert entry["reason"].startswith("newer versions are not loaded: serving settings: ")


def test_a_repository_not_found_is_said_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A relative `models` was logged as "(repository models)", which says nothing to an operator of an
    installed service started from some directory: the path is the absolute one it looked in."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    monkeypatch.chdir(tmp_path)
    settings = Settings(model_repository=Path("models"), use_cuda=False, poll_interval_s=30)
    with caplog.at_level(logging.ERROR, logger="service.models.manager"), TestClient(create_app(settings)) as client:
        assert client.get("/v2/health/ready").status_code == 503
    assert f"(repository {tmp_path / 'models'})" in caplog.text, caplog.text
