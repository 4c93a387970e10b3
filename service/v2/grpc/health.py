"""The standard gRPC health service (``grpc.health.v1.Health``, health.proto) on ``CTR_GRPC_PORT``: what
``grpc_health_probe``, Kubernetes ``grpc:`` probes and load balancers' gRPC health checks call, Triton serving
it too. ``Check`` answers SERVING when the service is ready (every role model loaded and warmed up) and not
draining, as ``ServerReady`` and ``GET /v2/health/ready`` say, NOT_SERVING otherwise; for the server (``""``)
and for the inference service by name. Another name is NOT_FOUND, as the protocol asks. ``Watch`` is not
answered (UNIMPLEMENTED, which the protocol allows: its clients fall back to ``Check``). Each check is counted
in ``ctr_grpc_responses_total{code}`` as any call is (NOT_SERVING is an answer: OK).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from service.http.errors import ApiError, echoed
from service.v2.grpc import messages as pb
from service.v2.grpc.answers import answered

if TYPE_CHECKING:
    from service.app import ScoringService

HEALTH_SERVICE = "grpc.health.v1.Health"


class HealthService:
    """``Check``, reading the app's state per call."""

    def __init__(self, app: ScoringService, *services: str) -> None:
        self.app = app
        self.services = ("", *services)  # "": the server as a whole

    @answered(pb.HealthCheckRequest)
    async def Check(self, request: pb.HealthCheckRequest, context: Any) -> pb.HealthCheckResponse:
        if request.service not in self.services:
            named = " or ".join(repr(name) for name in self.services)
            raise ApiError(404, f"no service {echoed(request.service)} here: ask for {named}")
        status = pb.HealthCheckResponse.SERVING if self.app.ready else pb.HealthCheckResponse.NOT_SERVING
        return pb.HealthCheckResponse(status=status)


def health_handlers(service: HealthService) -> grpc.GenericRpcHandler:
    # its message decoded by its answered wrapper: a malformed one is INVALID_ARGUMENT, with an id and a line
    serialize = pb.HealthCheckResponse.SerializeToString
    check = grpc.unary_unary_rpc_method_handler(service.Check, response_serializer=serialize)
    return grpc.method_handlers_generic_handler(HEALTH_SERVICE, {"Check": check})
