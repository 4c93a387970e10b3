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
    """Request, item, batch, queue and compute series per model version, and the provider in use
    (with several worker processes, summed over them)."""
    counters, pending = reported(request.app.state)
    text = counters.render(pending, models.served)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
