"""``POST /v1/score``: pCTR, pCTCVR and pCVR for each candidate ad."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service import scoring
from service.deps import json_body, request_deadline
from service.disconnect import until_disconnected
from service.schemas import SCORE_EXAMPLE, ScoreRequest, ScoreResponse, error_responses, request_body

router = APIRouter(tags=["scoring"])

# Bodies up to this size are parsed and encoded on the event loop (well under a millisecond); larger
# ones in the thread pool, so a 1000-candidate body cannot stall the loop.
INLINE_BODY_BYTES = 8 * 1024


@router.post(
    "/v1/score",
    summary="Score candidate ads",
    response_class=Response,
    responses={200: {"model": ScoreResponse, "description": "One score per candidate, in order."}}
    | error_responses(400, 413, 415, 422, 503, 504),
    openapi_extra=request_body(ScoreRequest, SCORE_EXAMPLE),
)
async def score(request: Request) -> Response:
    """Encode the features with each role model's spec, then run the models through their batchers.

    The optional `X-Request-Timeout-Ms` header lowers the deadline (`CTR_REQUEST_TIMEOUT_MS`).
    """
    # The hot path calls the dependency functions itself: FastAPI's dependency resolution cost
    # ~350 µs of CPU per request on the benchmark machine (docs/serving.md), more than the model.
    body = await json_body(request)
    deadline = await request_deadline(request)
    models, settings = request.app.state.models, request.app.state.settings
    if len(body) <= INLINE_BODY_BYTES:
        prepared = scoring.prepare(body, models, settings)
    else:
        prepared = await run_in_threadpool(scoring.prepare, body, models, settings)
    outputs = await until_disconnected(request, scoring.infer(prepared, models, deadline))
    return Response(scoring.render(prepared, outputs), media_type="application/json")
