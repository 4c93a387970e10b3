"""``GET /metrics``: Prometheus text exposition (service/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from service.deps import ModelsDep
from service.sibling_metrics import reported

router = APIRouter(tags=["observability"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, models: ModelsDep) -> PlainTextResponse:
    """Request, item, batch, queue and compute series per model version, the provider in use, HTTP and
    gRPC responses, refused versions, the open connections and large bodies held, and the processes' CPU
    and memory (with several worker processes, summed over them)."""
    counters, pending, process = reported(request.app.state)
    text = counters.render(pending, models.served, process)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
