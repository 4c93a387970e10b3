"""A typed Python client for the scoring service, synchronous (``ScoringClient``) and asynchronous
(``AsyncScoringClient``), for ad servers, the auction simulator and scripts.

    with ScoringClient("http://127.0.0.1:8000") as client:
        reply = client.score({"user_id": "u1", "hour": "20"}, [{"ad_id": "a7", "ad_price": 12.5}])
        reply.scores[0].pctr, reply.models["ctr"].version

Both keep a pool of persistent connections (httpx), send and read the API's JSON shapes as frozen
dataclasses, wait out a 503 that carries ``Retry-After`` (an overloaded queue) and try again up to
``max_retries`` times, and raise ``ServiceError`` for any other non-200 answer, carrying the
status, the service's ``error`` message and the request ``field`` at fault. A call that changes nothing
on the service (scoring, similarity, the model list) whose connection is dropped before its answer is
sent once more, on a fresh connection: HTTP/1.1's keep-alive race, where the service closes an idle
connection as a request goes out on it (docs/serving-log.md, "The keep-alive race"). Other transport
failures (refused connection, timeout) are httpx's own exceptions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

FeatureValue = str | int | float | None
Features = Mapping[str, FeatureValue]

DEFAULT_TIMEOUT_S = 10.0  # per HTTP call, connect included
DEFAULT_MAX_RETRIES = 3  # extra attempts after a 503 with Retry-After
MAX_RETRY_WAIT_S = 30.0  # a Retry-After longer than this is not waited for: the error is raised
# The connection closed, reset or unwritable before an answer came: a call that changes nothing is sent again
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class ServiceError(Exception):
    """A non-200 answer: ``status``, the service's ``error`` message and the ``field`` at fault."""

    def __init__(self, status: int, error: str, field: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(f"{status}: {error}" + (f" (field {field})" if field else ""))
        self.status = status
        self.error = error
        self.field = field
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int


@dataclass(frozen=True)
class Score:
    """One candidate's probabilities, all for the top slot (DESIGN.md: the service's contract)."""

    pctr: float
    pctcvr: float
    pcvr: float


@dataclass(frozen=True)
class ScoreResponse:
    scores: list[Score]  # one per candidate, in request order
    models: dict[str, ModelRef]  # role ("ctr", "ctcvr") -> the model version that filled it


@dataclass(frozen=True)
class RankedItem:
    id: str
    score: float


@dataclass(frozen=True)
class ModelStatus:
    """One entry of ``GET /v1/models``: a model a role names, loaded or not (and why)."""

    name: str
    roles: list[str]
    ready: bool
    version: int | None = None
    versions: list[int] | None = None
    kind: str | None = None
    provider: str | None = None
    position: dict[str, Any] | None = None  # {"regime": ..., "ctr_ratios": [...]} where the service says
    error: str | None = None


def score_body(context: Features, candidates: Sequence[Features]) -> dict[str, Any]:
    return {"context": dict(context), "candidates": [dict(c) for c in candidates]}


def parse_score(body: Mapping[str, Any]) -> ScoreResponse:
    return ScoreResponse(
        scores=[Score(float(s["pctr"]), float(s["pctcvr"]), float(s["pcvr"])) for s in body["scores"]],
        models={role: ModelRef(m["name"], int(m["version"])) for role, m in body["models"].items()},
    )


def parse_models(body: Mapping[str, Any]) -> list[ModelStatus]:
    known = set(ModelStatus.__dataclass_fields__)
    return [ModelStatus(**{k: v for k, v in entry.items() if k in known}) for entry in body["models"]]


def parse_similarity(body: Mapping[str, Any]) -> list[float]:
    return [float(s) for s in body["scores"]]


def parse_top_k(body: Mapping[str, Any]) -> list[RankedItem]:
    return [RankedItem(str(item["id"]), float(item["score"])) for item in body["items"]]


def _decode(response: httpx.Response) -> Any:
    """The JSON body of a 200, or ServiceError with the service's message and field."""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    if response.status_code == 200 and body is not None:
        return body
    error = body.get("error") if isinstance(body, dict) else None
    field = body.get("field") if isinstance(body, dict) else None
    raise ServiceError(response.status_code, str(error or response.text or "no body"), field, _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a 503 asks to wait (Retry-After in seconds), or None."""
    value = response.headers.get("retry-after")
    if response.status_code != 503 or value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_WAIT_S else None


def _headers(timeout_ms: float | None, token: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if timeout_ms is not None:
        headers["x-request-timeout-ms"] = f"{timeout_ms:g}"
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _pool(base_url: str, timeout_s: float, max_connections: int) -> dict[str, Any]:
    """httpx client options: one pool of at most ``max_connections`` kept-alive connections."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return {"base_url": base_url, "timeout": timeout_s, "limits": limits}


class ScoringClient:
    """Synchronous client over one pooled ``httpx.Client``; use it in a ``with`` block or ``close()``."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = 16,
    ) -> None:
        self.max_retries = max_retries
        self.waits: list[float] = []  # every Retry-After waited, in seconds (for logs and tests)
        self.resent = 0  # calls sent again after their connection was dropped (DROPPED)
        self._http = httpx.Client(**_pool(base_url, timeout_s, max_connections))

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, safe: bool = True
    ) -> Any:
        """One call, waiting out 503s with Retry-After; ``safe``: it changes nothing on the service, so a
        dropped connection sends it once more."""
        content = None if body is None else orjson.dumps(body)
        headers = headers or _headers(None)
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(method, path, content=content, headers=headers)
            except DROPPED:
                if not safe:
                    raise
                self.resent += 1
                response = self._http.request(method, path, content=content, headers=headers)
            wait = _retry_after(response)
            if wait is None or attempt == self.max_retries:
                return _decode(response)
            self.waits.append(wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def score(
        self, context: Features, candidates: Sequence[Features], timeout_ms: float | None = None
    ) -> ScoreResponse:
        """``POST /v1/score``: pCTR, pCTCVR and pCVR per candidate, with the model versions used."""
        return parse_score(self._call("POST", "/v1/score", score_body(context, candidates), _headers(timeout_ms)))

    def similarity(self, query: Features, items: Sequence[Features]) -> list[float]:
        """``POST /v1/similarity`` with items: one similarity per item, in order."""
        return parse_similarity(self._call("POST", "/v1/similarity", {"query": dict(query), "items": list(items)}))

    def top_k(self, query: Features, k: int) -> list[RankedItem]:
        """``POST /v1/similarity`` with k: the k best catalog items, best first."""
        return parse_top_k(self._call("POST", "/v1/similarity", {"query": dict(query), "k": k}))

    def models(self) -> list[ModelStatus]:
        """``GET /v1/models``: each role's model, its version and provider, or why it is not loaded."""
        return parse_models(self._call("GET", "/v1/models"))

    def ready(self) -> bool:
        """``GET /v2/health/ready`` answers 200."""
        return self._http.get("/v2/health/ready").status_code == 200

    def load_model(self, name: str, token: str) -> list[int]:
        """Admin ``POST /v2/repository/models/{name}/load``: (re)load ``name``; the versions now served."""
        body = self._call("POST", f"/v2/repository/models/{name}/load", None, _headers(None, token), safe=False)
        return [int(v) for v in body["versions"]]


def require_ready(url: str) -> None:
    """ValueError naming ``url`` unless a service there answers ``GET /v2/health/ready`` with 200: what a
    command given ``--url`` checks before it starts (an unreachable or malformed URL raised a traceback)."""
    try:
        with ScoringClient(url, timeout_s=5.0, max_retries=0) as client:
            ready = client.ready()
    except (httpx.TransportError, httpx.InvalidURL) as error:
        raise ValueError(f"--url {url}: no service answers there ({error or type(error).__name__})") from None
    if not ready:
        raise ValueError(f"--url {url}: the service answers but is not ready (GET /v2/health/ready)")


class AsyncScoringClient:
    """Asynchronous client over one pooled ``httpx.AsyncClient``: many requests in flight at once."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = 16,
    ) -> None:
        self.max_retries = max_retries
        self.waits: list[float] = []
        self.resent = 0
        self._http = httpx.AsyncClient(**_pool(base_url, timeout_s, max_connections))

    async def __aenter__(self) -> AsyncScoringClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, safe: bool = True
    ) -> Any:
        content = None if body is None else orjson.dumps(body)
        headers = headers or _headers(None)
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._http.request(method, path, content=content, headers=headers)
            except DROPPED:
                if not safe:
                    raise
                self.resent += 1
                response = await self._http.request(method, path, content=content, headers=headers)
            wait = _retry_after(response)
            if wait is None or attempt == self.max_retries:
                return _decode(response)
            self.waits.append(wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def score(
        self, context: Features, candidates: Sequence[Features], timeout_ms: float | None = None
    ) -> ScoreResponse:
        return parse_score(await self._call("POST", "/v1/score", score_body(context, candidates), _headers(timeout_ms)))

    async def similarity(self, query: Features, items: Sequence[Features]) -> list[float]:
        return parse_similarity(
            await self._call("POST", "/v1/similarity", {"query": dict(query), "items": list(items)})
        )

    async def top_k(self, query: Features, k: int) -> list[RankedItem]:
        return parse_top_k(await self._call("POST", "/v1/similarity", {"query": dict(query), "k": k}))

    async def models(self) -> list[ModelStatus]:
        return parse_models(await self._call("GET", "/v1/models"))

    async def ready(self) -> bool:
        return (await self._http.get("/v2/health/ready")).status_code == 200

    async def load_model(self, name: str, token: str) -> list[int]:
        body = await self._call("POST", f"/v2/repository/models/{name}/load", None, _headers(None, token), safe=False)
        return [int(v) for v in body["versions"]]
