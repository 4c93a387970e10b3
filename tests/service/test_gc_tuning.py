"""The server freezes what start-up loaded and raises the young-generation threshold; library use does not."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.gc_tuning import FIRST_GENERATION_THRESHOLD
from service.settings import Settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_server_app_tunes_the_collector_once_models_are_loaded(settings: Settings, restored_gc: None) -> None:
    with TestClient(create_app(settings, tune_gc=True)) as client:
        assert client.get("/v2/health/ready").status_code == 200
        assert gc.get_threshold()[0] == FIRST_GENERATION_THRESHOLD
        assert gc.get_freeze_count() > 0
        assert (
            client.post(
                "/v1/score", json={"context": {"user_id": "u"}, "candidates": [{"ad_id": "a", "ad_price": 1.0}]}
            ).status_code
            == 200
        )


def test_a_library_app_leaves_the_collector_alone(settings: Settings, restored_gc: None) -> None:
    before = gc.get_threshold()
    with TestClient(create_app(settings)):
        assert gc.get_threshold() == before
