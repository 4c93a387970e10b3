"""``POST /v1/score``: pCTR, pCTCVR and pCVR for each candidate ad."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service import scoring
from service.deps import JsonBody, ModelsDep, SettingsDep
from service.schemas import SCORE_EXAMPLE, ScoreRequest, ScoreResponse, error_responses, request_body

router = APIRouter(tags=["scoring"])


@router.post(
    "/v1/score",
    summary="Score candidate ads",
    response_class=Response,
    responses={200: {"model": ScoreResponse, "description": "One score per candidate, in order."}}
    | error_responses(400, 413, 415, 422, 503),
    openapi_extra=request_body(ScoreRequest, SCORE_EXAMPLE),
)
async def score(body: JsonBody, models: ModelsDep, settings: SettingsDep) -> Response:
    """Encode the features with each role model's spec and run the models off the event loop."""
    content = await run_in_threadpool(scoring.score, body, models, settings)
    return Response(content, media_type="application/json")
