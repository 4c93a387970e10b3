"""Fixtures for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def no_ambient_service_settings() -> Iterator[None]:
    """Every ``CTR_*`` variable of the shell running the tests removed for the session.

    ``Settings`` reads them (pydantic settings, prefix ``CTR_``) and servers a test spawns inherit this
    process's environment, so a developer's ``CTR_MAX_CANDIDATES=5`` or ``CTR_ADMIN_TOKEN`` changed what
    tests saw; a test sets what it needs itself. Session-scoped, so that it runs before session-scoped
    fixtures that build ``Settings`` (an autouse fixture runs first within its scope, not before wider ones)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in [name for name in os.environ if name.startswith("CTR_")]:
            monkeypatch.delenv(name)
        yield


@pytest.fixture
def closed_after() -> Iterator:
    """Keeps each matplotlib figure a test draws (``closed_after(figure)`` returns it) and closes them when the
    test ends: pyplot holds every open figure until it is closed."""
    figures = []

    def keep(figure):
        figures.append(figure)
        return figure

    yield keep
    if figures:
        import matplotlib.pyplot as plt

        for figure in figures:
            plt.close(figure)
