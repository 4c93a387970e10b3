"""The application factory: assembles settings, middleware, error handlers and routes.

Models (the role models and the optional retrieval model) are loaded in the lifespan, before the
first request is accepted; a role model with no loadable version leaves the service up but not
ready (``/v2/health/ready`` and ``/v1/score`` answer 503). At shutdown (SIGTERM or SIGINT: the
server drains its connections, server.py) every batcher drains its queue before the process exits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from service.gc_tuning import tune_garbage_collector
from service.http.body import BodySizeLimitMiddleware
from service.http.errors import install_error_handlers
from service.metrics import Metrics, StatusCounter
from service.models.manager import ModelManager
from service.models.snapshot import ServingModels
from service.routes import admin, health, metrics, models
from service.score import endpoint as score
from service.score.endpoint import PATH, ScoreEndpoint
from service.settings import Settings
from service.similarity import endpoint as similarity
from service.v2 import routes as v2

logger = logging.getLogger(__name__)

# Every route but the admin ones (mounted only with a token); each module declares one APIRouter
ROUTERS = (score.router, health.router, models.router, similarity.router, v2.router, metrics.router)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    manager = app.state.manager = ModelManager(app.state, settings, app.state.metrics)
    await manager.start()
    if app.state.models.ready:
        logger.info("ready: roles %s", settings.roles)
    else:
        logger.error("not ready: %s", app.state.models.unavailable())
    if app.state.tune_gc:
        tune_garbage_collector()
    yield
    await manager.stop(settings.drain_timeout_s)
    app.state.models = ServingModels.empty(settings, "shut down")
    logger.info("stopped: every queue drained")


class ScoringService(FastAPI):
    """The FastAPI app, with ``POST /v1/score`` answered by its plain ASGI handler ahead of the framework."""

    score_endpoint: ScoreEndpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.score_endpoint(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, tune_gc: bool = False) -> ScoringService:
    """The service app; ``tune_gc`` (the server's choice, not a library user's: it changes the whole
    process) freezes what is loaded at start-up and raises the collector's threshold (gc_tuning.py)."""
    settings = settings if settings is not None else Settings()
    app = ScoringService(
        title="Debiased CTR/CVR scoring",
        summary="Position-debiased pCTR, entire-space pCTCVR and pCVR for candidate ads, on ONNX Runtime.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tune_gc = tune_gc
    app.state.metrics = Metrics()
    app.state.models = ServingModels.empty(settings, "loading")
    app.score_endpoint = ScoreEndpoint(app.state)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(StatusCounter, counts=app.state.metrics.responses)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    if settings.admin_token is not None:
        app.include_router(admin.router)
    return app
