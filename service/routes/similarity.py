"""``POST /v1/similarity``: ESAM query-item similarity for given items, or the top k of the catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service import similarity as hot_path
from service.deps import JsonBody, SettingsDep
from service.retrieval import RetrievalState
from service.schemas import error_responses, request_body
from service.similarity_schemas import SIMILARITY_EXAMPLE, SimilarityRequest, SimilarityResponse

router = APIRouter(tags=["retrieval"])


def get_retrieval(request: Request) -> RetrievalState:
    return request.app.state.retrieval


RetrievalDep = Annotated[RetrievalState, Depends(get_retrieval)]


@router.post(
    "/v1/similarity",
    summary="Query-item similarity, or the top k catalog items for a query",
    response_class=Response,
    responses={200: {"model": SimilarityResponse, "description": "Scores in item order, or the top k items."}}
    | error_responses(400, 413, 415, 422, 503),
    openapi_extra=request_body(SimilarityRequest, SIMILARITY_EXAMPLE),
)
async def similarity(body: JsonBody, retrieval: RetrievalDep, settings: SettingsDep) -> Response:
    """Encode the query (and items) with the retrieval model's towers, off the event loop."""
    content = await run_in_threadpool(hot_path.similarity, body, retrieval, settings)
    return Response(content, media_type="application/json")
