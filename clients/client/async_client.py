"""``AsyncScoringClient``: the asynchronous client, over one pooled ``httpx.AsyncClient``. What both clients do is the
package's docstring (clients/client/__init__.py)."""

from __future__ import annotations

import asyncio
import weakref
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

OTHER_LOOP = (
    "this AsyncScoringClient is bound to the event loop it was first used in (its httpx connection pool is), and "
    "this call runs in another: make one client per event loop (`async with AsyncScoringClient(url) as client:` "
    "inside the coroutine asyncio.run runs), or make all its calls inside one asyncio.run"
)


class AsyncScoringClient(BaseClient):
    """Asynchronous client over one pooled ``httpx.AsyncClient``: many requests in flight at once, in the
    event loop it first runs in. A call from another loop (a second ``asyncio.run`` with the same client) raises
    ``RuntimeError`` saying so (``OTHER_LOOP``): the pool's connections are that loop's, and httpx failed from
    inside with "Event loop is closed" (or hung, the first loop still running in another thread). A fresh pool for
    the new loop is not made: the old one's connections could be closed only in their own loop."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = 16,
    ) -> None:
        super().__init__(base_url, timeout_s, max_retries, max_connections)
        self._http = httpx.AsyncClient(**self._pool)
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None  # the loop of its first call

    async def __aenter__(self) -> AsyncScoringClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._check_loop()
        await self._http.aclose()

    def _check_loop(self) -> None:
        """``RuntimeError`` (``OTHER_LOOP``) where this runs in another event loop than the client's first call."""
        running = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = weakref.ref(running)
        elif self._loop() is not running:
            raise RuntimeError(OTHER_LOOP)

    async def _call(self, attempts: Attempts, body: Any) -> Any:
        self._check_loop()
        sent = None if body is None else encode(body)
        while True:
            request = attempts.request_for(self._http, sent)
            content = bytearray()
            try:
                response = await self._http.send(request, stream=True)
                try:
                    async for chunk in response.aiter_bytes():
                        attempts.arrived(content, chunk)
                finally:
                    await response.aclose()
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
            await asyncio.sleep(wait)

    async def score(
        self,
        context: Features,
        candidates: Sequence[Features],
        timeout_ms: float | None = None,
        *,
        request_id: str | None = None,
        versions: Mapping[str, int] | None = None,
    ) -> ScoreResponse:
        body = score_body(context, candidates, versions)
        attempts = self._attempts("POST", "/v1/score", timeout_ms, request_id=request_id)
        return parse_score(await self._call(attempts, body), len(candidates))

    async def similarity(
        self,
        query: Features,
        items: Sequence[Features],
        timeout_ms: float | None = None,
        *,
        request_id: str | None = None,
    ) -> SimilarityResponse:
        body = similarity_body(query, items)
        attempts = self._attempts("POST", "/v1/similarity", timeout_ms, request_id=request_id)
        return parse_similarity(await self._call(attempts, body), len(items))

    async def top_k(
        self, query: Features, k: int, timeout_ms: float | None = None, *, request_id: str | None = None
    ) -> TopKResponse:
        body = {"query": checked_features("query", query), "k": k}
        attempts = self._attempts("POST", "/v1/similarity", timeout_ms, request_id=request_id)
        return parse_top_k(await self._call(attempts, body))

    async def models(self) -> list[ModelStatus]:
        return parse_models(await self._call(self._attempts("GET", "/v1/models"), None))

    async def live(self) -> bool:
        return await self._health("/v2/health/live")

    async def ready(self) -> bool:
        return await self._health("/v2/health/ready")

    async def _health(self, path: str) -> bool:
        self._check_loop()
        try:
            return (await self._http.get(path)).status_code == 200
        except httpx.TransportError:
            return False

    async def load_model(self, name: str, token: str) -> list[int]:
        attempts = self._attempts("POST", f"/v2/repository/models/{name}/load", token=token, safe=False)
        return [int(v) for v in (await self._call(attempts, None))["versions"]]
