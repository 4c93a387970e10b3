"""The service's app run in the test's own process (a ``TestClient``) over a repository of tiny ESMM versions,
with the admin token its admin routes take; and a model manager alone, outside an app."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient

from service.app import create_app
from service.metrics import Metrics
from service.models.manager import ModelManager
from service.models.snapshot import ServingModels
from service.settings import Settings
from tests.support.tiny_model import publish_tiny_esmm

TOKEN = "s3cret-admin-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = {"candidates": [{"user_id": "u", "ad_id": "a", "ad_price": 1.0}]}


def make_repository(root: Path, n_versions: int, serving: str = "") -> Path:
    for seed in range(n_versions):
        publish_tiny_esmm(root, seed=seed)
    if serving:
        (root / "esmm" / "config.toml").write_text(f'kind = "esmm"\n[serving]\n{serving}\n')
    return root


def bare_manager(settings: Settings) -> ModelManager:
    """A model manager outside an app (its state a bare namespace), nothing loaded yet."""
    return ModelManager(SimpleNamespace(models=ServingModels.empty(settings, "loading")), settings, Metrics())


def app_client(root: Path, **settings: object) -> TestClient:
    return TestClient(
        create_app(Settings(model_repository=root, ctr_model="esmm", use_cuda=False, admin_token=TOKEN, **settings))
    )
