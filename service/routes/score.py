"""``POST /v1/score``: pCTR, pCTCVR and pCVR for each candidate ad."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import scoring
from service.deps import json_body, request_deadline
from service.schemas import SCORE_EXAMPLE, ScoreRequest, ScoreResponse, error_responses, request_body

router = APIRouter(tags=["scoring"])


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
    # The service app answers POST /v1/score with service/score_endpoint.py, which skips the
    # framework's per-request layers; this route documents the operation and serves a mounted app.
    body = await json_body(request)
    deadline = await request_deadline(request)
    state = request.app.state
    answer = await scoring.respond(body, state.models, state.settings, deadline, request.receive)
    return Response(answer, media_type="application/json")
