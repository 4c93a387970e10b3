"""The application factory: assembles settings, middleware, error handlers and routes.

Models (the role models and the optional retrieval model) are loaded in the lifespan, before the
first request is accepted; a role model with no loadable version leaves the service up but not
ready (``/v2/health/ready`` and ``/v1/score`` answer 503). With ``CTR_GRPC_PORT`` set, the KServe V2
gRPC service (v2/grpc/server.py) starts on the same event loop once the models are loaded, and stops
(letting its calls in flight finish, up to the drain time-out) before the batchers drain. At shutdown
(SIGTERM or SIGINT: the server drains its connections, server.py) every batcher drains its queue before
the process exits. Run as one of several worker processes (``CTR_WORKERS``), it writes its metrics for
the others to read (sibling_metrics.py) while it serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import Message, Receive, Scope, Send

from common.version import VERSION
from service.gc_tuning import tune_garbage_collector
from service.http.body import INLINE_BODY_BYTES, BodySizeLimitMiddleware, large_body_size
from service.http.content_coding import content_coding, decoded
from service.http.errors import ApiError, InputError, UnexpectedErrors, error_response, install_error_handlers
from service.http.failure_lines import FailureLines, rationed_for
from service.http.holdings import Holdings
from service.http.openapi_bodies import with_request_bodies
from service.http.openapi_for_generators import for_generators
from service.http.openapi_headers import with_protocol_headers
from service.http.overload import BodyBudget, QueueWatch
from service.http.protocol import DirectRoutes
from service.http.route_state import build_route_state
from service.log_format import note_error
from service.metrics import Metrics, StatusCounter
from service.models.manager import ModelManager
from service.models.snapshot import ServingModels
from service.routes import admin, health, index, metrics, models
from service.score import endpoint as score
from service.score.endpoint import PATH, ScoreEndpoint
from service.settings import Settings
from service.similarity import endpoint as similarity
from service.v2 import routes as v2

logger = logging.getLogger(__name__)

BUSY_READING_BODIES = "server busy reading other large bodies"  # 503: no share of CTR_BODY_BYTES_IN_FLIGHT in time
SHED_PATHS = frozenset({PATH, "/v1/similarity"})  # with V2 infer: refused at the door under overload (server.py)
# Every route but the admin ones (mounted only with a token); each module declares one APIRouter
ROUTERS = (index.router, score.router, health.router, models.router, similarity.router, v2.router, metrics.router)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    start_grpc = grpc_starter() if settings.grpc_port else None  # fails before any model is loaded
    manager = app.state.manager = ModelManager(app.state, settings, app.state.metrics)
    sibling_admin = app.state.sibling_admin
    here = partial(admin.operate, manager)  # a load or unload in this process, as the admin routes do it
    if sibling_admin is not None:  # several workers: worker 0 polls, and what it finds loads in every one
        manager.poll_for_all(sibling_admin.index == 0, partial(sibling_admin.load_everywhere, here))
    app.state.loading_at_start = True  # a stop signal meanwhile ends the process at once (server.py)
    try:
        await manager.start()
    finally:
        app.state.loading_at_start = False
    build_route_state(app)  # before the first request, which waited for it on the loop, and before gc's freeze
    if app.state.models.ready:  # roles and versions as words and, in JSON, fields: a Python dict's repr was all
        filled = ", ".join(f"{role}={model}" for role, model in settings.roles.items())
        served = f"roles {filled}" if settings.roles else f"retrieval model {settings.retrieval_model} alone"
        versions = {name: sorted(by_version) for name, by_version in sorted(app.state.models.versions.items())}
        serving = ", ".join(f"{name} {listed}" for name, listed in versions.items())
        logger.info("ready: %s; serving %s", served, serving, extra={"roles": settings.roles, "serving": versions})
    else:
        unavailable = app.state.models.unavailable()
        said = "; ".join(f"model {name}: {why}" for name, why in unavailable.items())
        logger.error("not ready: %s", said, extra={"unavailable": unavailable})
    if app.state.tune_gc:
        tune_garbage_collector()
    grpc_server = await start_grpc(app) if start_grpc is not None else None
    siblings = app.state.siblings
    sharing = asyncio.create_task(siblings.keep_written(app.state)) if siblings is not None else None
    if sibling_admin is not None:
        await sibling_admin.listen(here)
    yield
    if sibling_admin is not None:
        sibling_admin.close()
    if grpc_server is not None:
        await grpc_server.stop(settings.drain_timeout_s)
    await manager.stop(settings.drain_timeout_s)
    if sharing is not None:
        sharing.cancel()
        app.state.holdings.release()
        siblings.write_state(app.state)  # its counters stay in the others' sums; its connections do not
    app.state.models = ServingModels.empty(settings, "shut down")
    logger.info("stopped: every queue drained")


def grpc_starter() -> Callable[[ScoringService], Awaitable[Any]]:
    """The gRPC server's start function (v2/grpc/server.py), imported only when CTR_GRPC_PORT is set."""
    try:
        from service.v2.grpc.server import start_grpc
    except ImportError as error:
        raise RuntimeError(
            f"CTR_GRPC_PORT is set but the gRPC server cannot be imported ({error}): "
            "pip install 'debiased-ctr[grpc]' (in a checkout: pip install -e '.[grpc]'), or unset CTR_GRPC_PORT"
        ) from error
    return start_grpc


class ScoringService(FastAPI):
    """The FastAPI app, with large bodies' bytes budgeted (http/overload.py) and ``POST /v1/score``
    answered by its plain ASGI handler ahead of the framework. (Requests that waited too long to be read
    are refused before they reach it, by the server's protocol: http/protocol.py.)"""

    score_endpoint: ScoreEndpoint
    body_budget: BodyBudget
    queue_watch: QueueWatch | None = None  # the server's door (http/protocol.py); None outside `ctr serve`
    in_flight: int = 0  # POST requests (and gRPC infer calls) being answered through the app
    direct_routes: DirectRoutes | None = None  # POSTs the server's protocol answers without the app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            if scope["type"] == "http" and scope["method"] == "HEAD":
                # RFC 9110 section 9.1: HEAD wherever GET (FastAPI's routes answered it 405): the app answers
                # the GET; the server, whose scope still says HEAD, sends the head alone
                scope = {**scope, "method": "GET"}
            await super().__call__(scope, receive, send)
            return
        path = scope["path"]
        coding = content_coding(scope["headers"])
        size = large_body_size(scope["headers"], self.state.settings.max_body_bytes, compressed=coding is not None)
        held = [0]  # the budget this request holds: a compressed body's shrinks to its size once decoded
        if size:
            receive = self._taking_budget(receive, size, held)
        self.in_flight += 1

        def decoded_whole(size: int) -> None:
            keep = size if size > INLINE_BODY_BYTES else 0  # as much as the same body sent plain would take
            if held[0] > keep:
                self.body_budget.release(held[0] - keep)
                held[0] = keep

        try:
            if coding is not None:
                try:
                    receive = decoded(scope, receive, coding, self.state.settings.max_body_bytes, decoded_whole)
                except InputError as refusal:  # a coding not read
                    self.state.metrics.responses[refusal.status] += 1
                    note_error(scope, refusal.message)
                    await error_response(refusal.status, refusal.message, refusal.field, refusal.headers)(
                        scope, receive, send
                    )
                    return
            if path == PATH and not scope.get("root_path"):
                await self.score_endpoint(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            self.in_flight -= 1
            if held[0]:
                self.body_budget.release(held[0])

    @property
    def ready(self) -> bool:
        """Whether the service takes requests: every role model loaded and warmed up, and not shutting down
        (what GET /v2/health/ready, gRPC ServerReady and the gRPC health check all say)."""
        return self.state.models.ready and not self.state.draining

    @property
    def shedding(self) -> bool:
        """Whether the door (the server's QueueWatch, when it has one) refuses inference requests now:
        what a request arriving another way (gRPC) is held to."""
        watch = self.queue_watch
        if watch is None or not watch.overloaded:
            return False
        direct = self.direct_routes.in_flight if self.direct_routes is not None else 0
        return self.in_flight + direct >= watch.min_in_flight

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document with the bodies the routes read themselves (http/openapi_bodies.py), the headers
        and errors the server's protocol reads and writes on every route (http/openapi_headers.py), and what
        client generators need (http/openapi_for_generators.py)."""
        if self.openapi_schema is None:
            document = with_request_bodies(super().openapi())
            self.openapi_schema = for_generators(with_protocol_headers(document))
        return self.openapi_schema

    @property
    def retry_after(self) -> int:
        return self.state.settings.retry_after_s

    def _taking_budget(self, receive: Receive, size: int, held: list[int]) -> Receive:
        """``receive`` taking ``size`` bytes of the large bodies' budget before the body's first read, and
        waiting at most half the body time-out for them (its 503 comes before the connection's body timer's
        408); ``held[0]`` says what was taken. Taken at the read, not at the request's arrival: a request its
        route refuses from its head alone (a V2 body over any valid request's size, 413 from its
        Content-Length; an unknown model, 404; a bad token, 401) is answered at once and takes none, where it
        waited behind other bodies' shares, and was answered 503 when they were held past half the body time-out
        (tests/integration/test_body_budget.py)."""
        budget = self.body_budget
        timeout_s = self.state.settings.body_timeout_s / 2
        asked = False

        async def receive_within_budget() -> Message:
            # a request's reads come one after another (its disconnect watch starts once the body is read)
            nonlocal asked
            if not asked:
                asked = True
                taken = await budget.acquire(size, timeout_s)  # gives back what it was granted if cancelled
                if taken is None:
                    raise ApiError(503, BUSY_READING_BODIES, headers={"Retry-After": str(self.retry_after)})
                held[0] = taken
            return await receive()

        return receive_within_budget


def operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings | None = None, tune_gc: bool = False) -> ScoringService:
    """The service app; ``tune_gc`` (the server's choice, not a library user's: it changes the whole
    process) freezes what is loaded at start-up and raises the collector's threshold (gc_tuning.py)."""
    settings = settings if settings is not None else Settings()
    app = ScoringService(
        title="Debiased CTR/CVR scoring",
        summary="Position-debiased pCTR, entire-space pCTCVR and pCVR for candidate ads, on ONNX Runtime.",
        version=VERSION,
        lifespan=lifespan,
        # each operation's id its handler's name (`score`, `infer_version`), what a generated client's methods
        # are called: FastAPI's default added the path and method (`infer_version_v2_models__name__versions_...`)
        generate_unique_id_function=operation_id,
        # a path with a slash too many is a 404 as any unknown path, as the direct route answers it: Starlette's
        # 307 named http:// and the Host whatever the client's scheme (X-Forwarded-Proto is not read) and without
        # a proxy's prefix, and told a POST to resend its body there
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.tune_gc = tune_gc
    app.state.metrics = Metrics()
    app.state.failure_lines = FailureLines(rationed_for(settings))  # failures' lines alone, with the access log off
    app.state.siblings = None  # a worker's side of the metrics shared by several (server.run, workers.py)
    app.state.sibling_admin = None  # and of the model loads and unloads (sibling_admin.py)
    app.state.models = ServingModels.empty(settings, "loading")
    app.state.draining = False  # set on SIGTERM by the server (http/drain.py): readiness then says 503
    app.state.loading_at_start = False  # while the lifespan loads the models (server.py's stop signals)
    app.score_endpoint = ScoreEndpoint(app.state)
    app.body_budget = BodyBudget(settings.body_bytes_in_flight)
    app.state.holdings = Holdings(app.body_budget)  # /metrics' gauges of what the server holds
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(UnexpectedErrors)  # inside the counter: its 500s are counted
    app.add_middleware(StatusCounter, counts=app.state.metrics.responses, failure_lines=app.state.failure_lines)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(admin.router if settings.admin_token is not None else admin.off_router)
    app.router.default = index.unknown_path(app)  # a 404 that names the route a trailing slash hid, or GET /
    return app
