"""Fixtures of the typed client's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real service (uvicorn on loopback) serving the tiny ESMM in both roles, one a module."""
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    with running_server(root, tmp_path_factory.mktemp("logs") / "server.log", ctr_model="esmm") as (url, _):
        yield url
