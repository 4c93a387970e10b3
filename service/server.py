"""Running the service under uvicorn (``ctr serve``)."""

from __future__ import annotations

import logging

import uvicorn

from service.app import create_app
from service.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int) -> None:
    """One root handler; uvicorn's loggers propagate to it, so every line has the same format."""
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)


def serve(settings: Settings | None = None) -> None:
    """Serve until interrupted, on the host and port the settings name."""
    settings = settings if settings is not None else Settings()
    configure_logging(settings.log_level_number)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
    )
