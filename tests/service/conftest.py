from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.support.tiny_model import publish_tiny_esmm


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository holding esmm version 1 (the tiny model), serving both roles."""
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    return root


@pytest.fixture(scope="session")
def settings(repository: Path) -> Settings:
    return Settings(
        model_repository=repository, ctr_model="esmm", max_candidates=50, max_body_bytes=64 * 1024, use_cuda=False
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client
