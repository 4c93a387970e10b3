"""Fixtures of the typed client's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clients.service_process import REQUEST_TIMEOUT_MS
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real service (uvicorn on loopback) serving the tiny ESMM in both roles, one a module.

    Its deadline is an offline client's (``REQUEST_TIMEOUT_MS``): these tests are about what the client sends and
    reads, and the default 1 s answered some of them 504 on a machine busy with the rest of the suite."""
    root = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(root)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(root, log, ctr_model="esmm", request_timeout_ms=str(REQUEST_TIMEOUT_MS)) as (url, _):
        yield url
