"""``POST /v1/similarity``: ESAM query-item similarity for given items, or the top k of the catalog."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from service.deps import DeadlineDep, DisconnectDep, JsonBody, ModelsDep, SettingsDep
from service.http.body import TIMEOUT_PARAMETER
from service.http.errors import BAD_BODY, error_responses
from service.http.openapi_bodies import request_body
from service.similarity import pipeline
from service.similarity.schemas import SIMILARITY_EXAMPLE, SimilarityRequest, SimilarityResponse

router = APIRouter(tags=["retrieval"])


@router.post(
    "/v1/similarity",
    summary="Query-item similarity, or the top k catalog items for a query",
    response_class=Response,
    responses={200: {"model": SimilarityResponse, "description": "Scores in item order, or the top k items."}}
    | error_responses((400, BAD_BODY), 413, 415, 422, 503, 504),
    openapi_extra=request_body(SimilarityRequest, SIMILARITY_EXAMPLE, headers=(TIMEOUT_PARAMETER,)),
)
async def similarity(
    body: JsonBody, models: ModelsDep, settings: SettingsDep, deadline: DeadlineDep, disconnect: DisconnectDep
) -> Response:
    """Encode the query (and items); the queries of concurrent requests are embedded by one run of the
    query tower (the retrieval model's batcher); scoring items and ranking the catalog run off the loop."""
    content = await pipeline.respond(body, models, settings, deadline, disconnect)
    return Response(content, media_type="application/json")
