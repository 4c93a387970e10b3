"""``ScoringClient``: the synchronous client, over one pooled ``httpx.Client``. What both clients do is the
package's docstring (clients/client/__init__.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from clients.client.attempts import Attempts
from clients.client.base import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S, DROPPED, BaseClient
from clients.client.bodies import Features, checked_features, encode, score_body, similarity_body
from clients.client.responses import (
    ModelStatus,
    ScoreResponse,
    SimilarityResponse,
    TopKResponse,
    decode,
    parse_models,
    parse_score,
    parse_similarity,
    parse_top_k,
)


class ScoringClient(BaseClient):
    """Synchronous client over one pooled ``httpx.Client``; use it in a ``with`` block or ``close()``. One
    client may be shared by threads (httpx's pool is thread-safe, and so is the retry budget)."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = 16,
    ) -> None:
        super().__init__(base_url, timeout_s, max_retries, max_connections)
        self._http = httpx.Client(**self._pool)

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, attempts: Attempts, body: Any) -> Any:
        """One call, waiting out 503s with Retry-After within its budget (``Attempts``)."""
        sent = None if body is None else encode(body)
        while True:
            request = attempts.request_for(self._http, sent)
            content = bytearray()
            try:
                response = self._http.send(request, stream=True)
                try:
                    for chunk in response.iter_bytes():
                        attempts.arrived(content, chunk)
                finally:
                    response.close()
            except DROPPED:
                if not attempts.resend():
                    raise
                self.resent += 1
                continue
            except httpx.ConnectError as error:
                raise self._unreachable(attempts, error) from error
            except httpx.TimeoutException as error:
                named = self._named_timeout(attempts, error)
                if named is None:
                    raise
                raise named from error
            wait = attempts.wait(response)
            if wait is None:
                return decode(response, bytes(content))
            self.waits.append(wait)
            self.retried += 1
            time.sleep(wait)

    def score(
        self,
        context: Features,
        candidates: Sequence[Features],
        timeout_ms: float | None = None,
        *,
        request_id: str | None = None,
        versions: Mapping[str, int] | None = None,
    ) -> ScoreResponse:
        """``POST /v1/score``: pCTR, pCTCVR and pCVR per candidate, with the model versions used. ``versions``
        (model name -> one of its served versions) has those versions score it, where the newest would (an
        online experiment's arm: ``{"esmm": 1}``); a version not served is a ServiceError 404."""
        body = score_body(context, candidates, versions)
        attempts = self._attempts("POST", "/v1/score", timeout_ms, request_id=request_id)
        return parse_score(self._call(attempts, body), len(candidates))

    def similarity(
        self,
        query: Features,
        items: Sequence[Features],
        timeout_ms: float | None = None,
        *,
        request_id: str | None = None,
    ) -> SimilarityResponse:
        """``POST /v1/similarity`` with items: one similarity per item, in order, and the model version."""
        body = similarity_body(query, items)
        attempts = self._attempts("POST", "/v1/similarity", timeout_ms, request_id=request_id)
        return parse_similarity(self._call(attempts, body), len(items))

    def top_k(
        self, query: Features, k: int, timeout_ms: float | None = None, *, request_id: str | None = None
    ) -> TopKResponse:
        """``POST /v1/similarity`` with k: the k best catalog items, best first, and the model version."""
        body = {"query": checked_features("query", query), "k": k}
        attempts = self._attempts("POST", "/v1/similarity", timeout_ms, request_id=request_id)
        return parse_top_k(self._call(attempts, body))

    def models(self) -> list[ModelStatus]:
        """``GET /v1/models``: each role's model, its version and provider, or why it is not loaded."""
        return parse_models(self._call(self._attempts("GET", "/v1/models"), None))

    def live(self) -> bool:
        """``GET /v2/health/live`` answers 200; False where nothing answers."""
        return self._health("/v2/health/live")

    def ready(self) -> bool:
        """``GET /v2/health/ready`` answers 200 (every role's model loaded); False where nothing answers."""
        return self._health("/v2/health/ready")

    def _health(self, path: str) -> bool:
        try:
            return self._http.get(path).status_code == 200
        except httpx.TransportError:
            return False

    def load_model(self, name: str, token: str) -> list[int]:
        """Admin ``POST /v2/repository/models/{name}/load``: (re)load ``name``; the versions now served."""
        attempts = self._attempts("POST", f"/v2/repository/models/{name}/load", token=token, safe=False)
        return [int(v) for v in self._call(attempts, None)["versions"]]
