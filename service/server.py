"""Running the service under uvicorn (``ctr serve``)."""

from __future__ import annotations

import logging

import uvicorn

from service.app import create_app
from service.log_format import JsonFormatter
from service.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int, structured: bool = False) -> None:
    """One root handler; uvicorn's loggers propagate to it, so every line has the same format."""
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)
    if structured:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())


def serve(settings: Settings | None = None) -> None:
    """Serve until SIGTERM or SIGINT, on the host and port the settings name.

    On the signal uvicorn stops accepting connections and waits up to ``drain_timeout_s`` for the
    requests in flight; then the lifespan drains every batcher's queue, and the process exits 0.
    """
    settings = settings if settings is not None else Settings()
    configure_logging(settings.log_level_number, settings.log_format == "json")
    uvicorn.run(
        create_app(settings, tune_gc=True),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
    )
