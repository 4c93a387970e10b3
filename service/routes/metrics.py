"""``GET /metrics``: Prometheus text exposition (service/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from service.deps import ModelsDep

router = APIRouter(tags=["observability"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, models: ModelsDep) -> PlainTextResponse:
    """Request, item, batch, queue and compute series per model version, and the provider in use."""
    pending = {(m.name, m.version): b.pending_requests for m, b in models.batchers.items()}
    served = [(name, v) for name, by_version in models.versions.items() for v in by_version]
    text = request.app.state.metrics.render(pending, served)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
