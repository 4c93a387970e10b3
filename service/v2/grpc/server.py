"""The KServe V2 gRPC service (``inference.GRPCInferenceService``, inference.proto) on ``CTR_GRPC_PORT``.

It runs in the service's process and event loop (grpc.aio), started and stopped by the app's lifespan,
and shares everything with the REST routes: the serving snapshot, each model version's batcher (so
gRPC, V2 REST and ``/v1/score`` requests batch together), the deadline (the call's gRPC deadline,
capped by ``CTR_REQUEST_TIMEOUT_MS``), admission at the door while the event loop is behind, and the
metrics (the batchers' counters, and ``ctr_grpc_responses_total{code}``).

A refusal keeps the service's message, with the gRPC code clients expect (answers.py). Messages are bounded
by ``CTR_MAX_BODY_BYTES``, as REST bodies are. The standard health service (``grpc.health.v1.Health``,
health.py) answers on the same port.

Needs grpcio and protobuf (``pip install -e '.[grpc]'``); imported only when the port is set.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format
from starlette.concurrency import run_in_threadpool

from service.binding import SETTING_NAMES, ListenRefused, said_refused, shown
from service.http.body import INLINE_BODY_BYTES
from service.http.errors import ApiError
from service.models.snapshot import ServingModels
from service.sibling_metrics import reported
from service.v2 import serving
from service.v2.grpc import messages as pb
from service.v2.grpc.answers import answered
from service.v2.grpc.health import HealthService, health_handlers
from service.v2.grpc.protocol import parse_request, render_response
from service.v2.model_config import served_config
from service.v2.protocol import model_metadata
from service.v2.routes import EXTENSIONS, SERVER_NAME, SERVER_VERSION
from service.v2.statistics import statistics

if TYPE_CHECKING:
    from service.app import ScoringService
    from service.settings import Settings

logger = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"

PING_STRIKES = 2  # grpc-core's default, named so that the count the docs give does not move with grpcio


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """grpc-core's channel arguments for the server: messages bounded by ``CTR_MAX_BODY_BYTES``, the port shared
    by the workers, and clients' keepalive pings let through from every ``CTR_GRPC_MIN_PING_INTERVAL_S`` on,
    calls in flight or not. grpc-core's defaults (no pings on a connection without calls, one per 5 min without
    data) answered an ad server's grpc-go/grpc-java channel pinging every 10 s (grpc-go's shortest) with GOAWAY
    ENHANCE_YOUR_CALM "too_many_pings" after ~30 s idle, and its next bid paid a reconnect.

    ``grpc.http2.min_ping_interval_without_data_ms`` (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS) is
    the setting, in whole milliseconds; ``grpc.keepalive_permit_without_calls`` makes it hold on a connection
    without calls too (grpc-core asks 2 h between pings there otherwise). A ping that comes sooner after the
    last is a strike, the server's next headers or data clear them, and the strike past
    ``grpc.http2.max_ping_strikes`` gets GOAWAY: a ping flood stays refused."""
    return [
        ("grpc.max_receive_message_length", settings.max_body_bytes),
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", round(settings.grpc_min_ping_interval_s * 1000)),
        ("grpc.http2.max_ping_strikes", PING_STRIKES),
    ]


class InferenceService:
    """The RPCs, reading the app's state per call (models change on reload)."""

    def __init__(self, app: ScoringService) -> None:
        self.app = app

    @property
    def models(self) -> ServingModels:
        return self.app.state.models

    @answered(pb.ServerLiveRequest)
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @answered(pb.ServerReadyRequest)
    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.app.ready)  # as HTTP says

    @answered(pb.ModelReadyRequest)
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        try:
            serving.served(self.models, request.name, request.version)
        except ApiError as error:
            if error.status == 400:  # a version that is no integer: INVALID_ARGUMENT, as Triton answers it
                raise
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    @answered(pb.ServerMetadataRequest)
    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)

    @answered(pb.ModelMetadataRequest)
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        models = self.models
        model = serving.served(models, request.name, request.version)
        versions = [model.version] if request.version else sorted(models.versions.get(request.name, {}))
        return json_format.ParseDict(model_metadata(model, versions), pb.ModelMetadataResponse())

    @answered(pb.ModelConfigRequest)
    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Any) -> pb.ModelConfigResponse:
        models = self.models
        model = serving.served(models, request.name, request.version)
        config = served_config(model, models, self.app.state.manager.configs, self.app.state.settings.max_candidates)
        return json_format.ParseDict({"config": config}, pb.ModelConfigResponse())

    @answered(pb.ModelStatisticsRequest)
    async def ModelStatistics(self, request: pb.ModelStatisticsRequest, context: Any) -> pb.ModelStatisticsResponse:
        models = self.models
        if not request.name:
            versions = [(n, v) for n, served in sorted(models.versions.items()) for v in sorted(served)]
        elif request.version:
            versions = [(request.name, serving.served(models, request.name, request.version).version)]
        else:
            serving.served(models, request.name, None)
            versions = [(request.name, v) for v in sorted(models.versions.get(request.name, {}))]
        body = statistics(reported(self.app.state)[0], versions)  # every worker's, as the REST route reports
        return json_format.ParseDict(body, pb.ModelStatisticsResponse())

    @answered(pb.ModelInferRequest)
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        app = self.app
        if app.shedding:  # a standing queue: the same refusal as at the HTTP door
            app.queue_watch.refused += 1
            raise ApiError(
                503,
                "server overloaded: requests wait too long to be read; retry later",
                headers={"Retry-After": str(app.retry_after)},  # as the HTTP door's refusal says it
            )
        app.in_flight += 1
        try:
            models, settings = self.models, app.state.settings
            model = serving.scoring(serving.served(models, request.model_name, request.model_version))
            loop = asyncio.get_running_loop()
            timeout_s = settings.request_timeout_ms / 1000.0
            remaining = context.time_remaining()
            deadline = loop.time() + (timeout_s if remaining is None else min(timeout_s, remaining))
            if request.raw_input_contents or request.ByteSize() <= INLINE_BODY_BYTES:  # raw: read in place
                call = parse_request(request, model, settings.max_candidates)
            else:  # numbers in protobuf lists, as large JSON bodies: checked off the event loop
                call = await run_in_threadpool(parse_request, request, model, settings.max_candidates)
            outputs = await serving.run(models, model, call.inputs, call.rows, deadline)
            return render_response(model, call, outputs)
        finally:
            app.in_flight -= 1


RPCS = {  # method -> response type (each method's request type is the one its @answered decodes)
    "ServerLive": pb.ServerLiveResponse,
    "ServerReady": pb.ServerReadyResponse,
    "ModelReady": pb.ModelReadyResponse,
    "ServerMetadata": pb.ServerMetadataResponse,
    "ModelMetadata": pb.ModelMetadataResponse,
    "ModelInfer": pb.ModelInferResponse,
    "ModelConfig": pb.ModelConfigResponse,
    "ModelStatistics": pb.ModelStatisticsResponse,
}


def handlers(service: InferenceService) -> grpc.GenericRpcHandler:
    """The service's unary methods as one generic handler (what generated ``*_pb2_grpc`` code builds); each
    gets its message's bytes, decoded by its ``answered`` wrapper, where a malformed one is INVALID_ARGUMENT."""
    methods = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(service, name), response_serializer=response.SerializeToString
        )
        for name, response in RPCS.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


async def start_grpc(app: ScoringService) -> grpc.aio.Server:
    """The gRPC server on ``CTR_HOST:CTR_GRPC_PORT``, serving on the running event loop. With several
    worker processes each binds the port with ``SO_REUSEPORT`` and the kernel spreads the connections
    over them (the supervisor has checked that no other socket holds the port: workers.py); alone, a
    port already in use is an error: ``ListenRefused``, said in one line (taken since the start's check)."""
    settings = app.state.settings
    server = grpc.aio.server(options=server_options(settings))
    server.add_generic_rpc_handlers((handlers(InferenceService(app)), health_handlers(HealthService(app, SERVICE))))
    address = shown(settings.host, settings.grpc_port)
    try:  # grpcio raises where it cannot bind (1.85: "Failed to bind to address ..."); older ones returned 0
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        bound, reason = 0, str(error)
    else:
        reason = "gRPC could not bind it"
    if bound == 0:  # one line and exit 3, as for the HTTP port: the traceback took 65 lines
        said_refused(settings.host, settings.grpc_port, SETTING_NAMES["grpc_port"], reason)
        raise ListenRefused(address)
    await server.start()
    logger.info("gRPC (KServe V2) listening on %s", address)
    return server
