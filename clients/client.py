"""A typed Python client for the scoring service, synchronous (``ScoringClient``) and asynchronous
(``AsyncScoringClient``), for ad servers, the auction simulator and scripts.

    with ScoringClient("http://127.0.0.1:8000") as client:
        reply = client.score(
            {"user_id": "u1", "hour": "20"},
            [{"ad_id": "a7", "ad_category": "c3", "advertiser_id": "adv9", "ad_price": 12.5}],
            timeout_ms=50,
        )
        reply.scores[0].pctr, reply.models["ctr"].version

Both keep a pool of persistent connections (httpx), send and read the API's JSON shapes as frozen
dataclasses, wait out a 503 that carries ``Retry-After`` (an overloaded queue) and try again up to
``max_retries`` times, and raise ``ServiceError`` for any other non-200 answer, carrying the
status, the service's ``error`` message and the request ``field`` at fault. A call that changes nothing
on the service (scoring, similarity, the model list) whose connection is dropped before its answer is
sent once more, on a fresh connection: HTTP/1.1's keep-alive race, where the service closes an idle
connection as a request goes out on it (docs/serving-log.md, "The keep-alive race"). Other transport
failures (refused connection, timeout) are httpx's own exceptions.

A call's ``timeout_ms`` bounds the whole call: every attempt tells the service what is left of it (the
service answers 504 past it), a 503 is waited out only where its ``Retry-After`` fits in what is left
(else that 503 is raised), and waiting for a pooled connection, the network and the answer get what is
left plus ``DEADLINE_GRACE_S`` before httpx raises its ``TimeoutException``. Without ``timeout_ms`` a call
has no bound of its own: ``timeout_s`` is httpx's, which holds for each phase of one HTTP exchange
(connecting, each read, each write, waiting for a pooled connection), not for the exchange as a whole.

Feature values are checked before anything is sent: NaN and infinity are refused with ``ValueError``
naming the feature (JSON has no such numbers, and the encoder would have sent ``null``: the feature's
default, or "missing"); numpy scalars are sent as the numbers they hold. An answer whose shape does not
fit the request (another number of scores than candidates) raises ``ValueError``.

``AsyncScoringClient`` belongs to the event loop it first runs in (httpx's pool does): make one per
``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

FeatureValue = str | int | float | None
Features = Mapping[str, FeatureValue]

DEFAULT_TIMEOUT_S = 10.0  # httpx's, for each phase of one HTTP exchange (module docstring)
DEFAULT_MAX_RETRIES = 3  # extra attempts after a 503 with Retry-After
MAX_RETRY_WAIT_S = 30.0  # a Retry-After longer than this is not waited for: the error is raised
DEADLINE_GRACE_S = 0.05  # past a call's timeout_ms, how long the client still waits for the service's own 504
MIN_ATTEMPT_S = 0.001  # less left of timeout_ms than this: no attempt is sent (its header would say 0.000 ms)
WAITS_KEPT = 1000  # the most recent Retry-After waits ``waits`` keeps
# The connection closed, reset or unwritable before an answer came: a call that changes nothing is sent again
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class ServiceError(Exception):
    """A non-200 answer: ``status``, the service's ``error`` message, the ``field`` at fault, and for a 503
    the seconds its ``Retry-After`` asked to wait (also when longer than the client waits)."""

    def __init__(self, status: int, error: str, field: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(f"{status}: {error}" + (f" (field {field})" if field else ""))
        self.status = status
        self.error = error
        self.field = field
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[type[ServiceError], tuple[int, str, str | None, float | None]]:
        return ServiceError, (self.status, self.error, self.field, self.retry_after_s)  # pickle, copy


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
class SimilarityResponse:
    scores: list[float]  # one per item, in request order
    model: ModelRef  # the retrieval model version that scored them


@dataclass(frozen=True)
class TopKResponse:
    items: list[RankedItem]  # the k best catalog items, best first
    model: ModelRef


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
    inputs: list[dict[str, Any]] | None = None  # {"name", "dtype", "shape"} of each ONNX input
    outputs: list[dict[str, Any]] | None = None
    features: list[str] | None = None  # the feature names its requests may carry
    catalog_items: int | None = None  # a retrieval model's catalog size
    error: str | None = None


def checked_features(where: str, features: Features, index: int | None = None) -> dict[str, FeatureValue]:
    """``features`` as a dict, refusing NaN and infinity (ValueError naming ``where[index].name``): the JSON
    encoder would send them as null, which the service takes as the feature left out. The common values
    (text, integers, finite floats) pass on a type check; the name is written only for an error. Anything
    but a mapping is a TypeError naming ``where[index]`` (``dict("a7")`` raised a ValueError about update
    sequences)."""
    if not isinstance(features, Mapping) and not hasattr(features, "keys"):  # dict() takes a pandas Series too
        named = where if index is None else f"{where}[{index}]"
        raise TypeError(f"{named} must be a mapping of feature names to values, not {type(features).__name__}")
    values = dict(features)
    for name, value in values.items():
        if value is None or type(value) is str or type(value) is int:
            continue
        if type(value) is float and value - value == 0.0:  # finite: NaN and infinity give NaN
            continue
        try:
            finite = math.isfinite(value)
        except TypeError:
            continue  # not a number: the encoder names its type
        if not finite:
            named = where if index is None else f"{where}[{index}]"
            raise ValueError(
                f"{named}.{name} is {value}: JSON has no NaN or infinity; send a finite number, or leave an "
                "optional feature out to get its default"
            )
    return values


def score_body(context: Features, candidates: Sequence[Features]) -> dict[str, Any]:
    return {
        "context": checked_features("context", context),
        "candidates": [checked_features("candidates", c, i) for i, c in enumerate(candidates)],
    }


def similarity_body(query: Features, items: Sequence[Features]) -> dict[str, Any]:
    return {
        "query": checked_features("query", query),
        "items": [checked_features("items", c, i) for i, c in enumerate(items)],
    }


def encode(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _counted(values: list[Any], expected: int, what: str) -> list[Any]:
    if len(values) != expected:
        raise ValueError(f"the service answered {len(values)} scores for {expected} {what}")
    return values


def parse_model(body: Mapping[str, Any]) -> ModelRef:
    return ModelRef(str(body["name"]), int(body["version"]))


def parse_score(body: Mapping[str, Any], candidates: int | None = None) -> ScoreResponse:
    scores = [Score(float(s["pctr"]), float(s["pctcvr"]), float(s["pcvr"])) for s in body["scores"]]
    return ScoreResponse(
        scores=scores if candidates is None else _counted(scores, candidates, "candidates"),
        models={role: parse_model(m) for role, m in body["models"].items()},
    )


def parse_models(body: Mapping[str, Any]) -> list[ModelStatus]:
    known = set(ModelStatus.__dataclass_fields__)
    return [ModelStatus(**{k: v for k, v in entry.items() if k in known}) for entry in body["models"]]


def parse_similarity(body: Mapping[str, Any], items: int | None = None) -> SimilarityResponse:
    scores = [float(s) for s in body["scores"]]
    return SimilarityResponse(scores if items is None else _counted(scores, items, "items"), parse_model(body["model"]))


def parse_top_k(body: Mapping[str, Any]) -> TopKResponse:
    items = [RankedItem(str(item["id"]), float(item["score"])) for item in body["items"]]
    return TopKResponse(items, parse_model(body["model"]))


def _decode(response: httpx.Response, content: bytes) -> Any:
    """The JSON body (``content``) of a 200, or ServiceError with the service's message and field."""
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = None
    if response.status_code == 200 and body is not None:
        return body
    text = content.decode("utf-8", "replace")
    if response.status_code == 200:
        raise ServiceError(200, f"the answer is not JSON: {text[:200]!r}")
    error = body.get("error") if isinstance(body, dict) else None
    field = body.get("field") if isinstance(body, dict) else None
    raise ServiceError(response.status_code, str(error or text or "no body"), field, _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a 503 asks to wait (Retry-After: seconds, or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if response.status_code != 503 or value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
        seconds = max(seconds, 0.0)
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def _headers(token: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers


class _Attempts:
    """One call's attempts: the options of each (headers with what is left of ``timeout_ms``, httpx's
    timeout), whether a dropped connection is sent once more, and whether a 503 is waited out."""

    def __init__(self, headers: dict[str, str], timeout_ms: float | None, max_retries: int, safe: bool) -> None:
        if timeout_ms is not None and not (timeout_ms > 0 and math.isfinite(timeout_ms)):
            raise ValueError(f"timeout_ms must be a positive number of milliseconds, not {timeout_ms}")
        self.headers = headers
        self.deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        self.retries_left = max_retries
        self.safe = safe
        self.resent = False  # this attempt's one resend is spent

    def options(self) -> dict[str, Any]:
        if self.deadline is None:
            return {"headers": self.headers}
        left_s = self.deadline - time.monotonic()
        if left_s < MIN_ATTEMPT_S:  # the service would refuse a time-out header of 0.000 ms with a 400
            raise httpx.TimeoutException("the call's timeout_ms passed before an answer came")
        return {
            "headers": {**self.headers, "x-request-timeout-ms": f"{left_s * 1000.0:.3f}"},
            "timeout": left_s + DEADLINE_GRACE_S,
        }

    def arrived(self, content: bytearray, chunk: bytes) -> None:
        """Adds an answer's ``chunk`` to its ``content``; ReadTimeout once timeout_ms (and the grace) passed:
        a service that trickles its answer is not waited on past the call's budget."""
        content += chunk
        if self.deadline is not None and time.monotonic() > self.deadline + DEADLINE_GRACE_S:
            raise httpx.ReadTimeout("the answer was still arriving when the call's timeout_ms passed")

    def resend(self) -> bool:
        """Whether a call whose connection was dropped is sent once more (once an attempt, a safe call)."""
        if not self.safe or self.resent:
            return False
        self.resent = True
        return True

    def wait(self, response: httpx.Response) -> float | None:
        """Seconds to wait before the next attempt, or None: this answer is the call's."""
        wait = _retry_after(response)
        if wait is None or wait > MAX_RETRY_WAIT_S or self.retries_left == 0:
            return None
        if self.deadline is not None and time.monotonic() + wait + DEADLINE_GRACE_S >= self.deadline:
            return None  # no time for an attempt after the wait: the 503 is the answer, not a certain 504
        self.retries_left -= 1
        self.resent = False
        return wait


class _Client:
    """What both clients hold: the pool's options, the retry limit and what they counted."""

    def __init__(self, base_url: str, timeout_s: float, max_retries: int, max_connections: int) -> None:
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 (no retry) or more, not {max_retries}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be 1 or more, not {max_connections}")
        self.max_retries = max_retries
        self.waits: deque[float] = deque(maxlen=WAITS_KEPT)  # the latest Retry-After waits, in seconds
        self.resent = 0  # calls sent again after their connection was dropped (DROPPED)
        self.retried = 0  # calls sent again after a 503's Retry-After
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._pool = {"base_url": base_url, "timeout": timeout_s, "limits": limits}

    def _attempts(self, timeout_ms: float | None, token: str | None = None, safe: bool = True) -> _Attempts:
        return _Attempts(_headers(token), timeout_ms, self.max_retries, safe)


class ScoringClient(_Client):
    """Synchronous client over one pooled ``httpx.Client``; use it in a ``with`` block or ``close()``. One
    client may be shared by threads (httpx's pool is thread-safe)."""

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

    def _call(self, method: str, path: str, body: Any, attempts: _Attempts) -> Any:
        """One call, waiting out 503s with Retry-After within its budget (``_Attempts``)."""
        sent = None if body is None else encode(body)
        while True:
            content = bytearray()
            try:
                with self._http.stream(method, path, content=sent, **attempts.options()) as response:
                    for chunk in response.iter_bytes():
                        attempts.arrived(content, chunk)
            except DROPPED:
                if not attempts.resend():
                    raise
                self.resent += 1
                continue
            wait = attempts.wait(response)
            if wait is None:
                return _decode(response, bytes(content))
            self.waits.append(wait)
            self.retried += 1
            time.sleep(wait)

    def score(
        self, context: Features, candidates: Sequence[Features], timeout_ms: float | None = None
    ) -> ScoreResponse:
        """``POST /v1/score``: pCTR, pCTCVR and pCVR per candidate, with the model versions used."""
        body = score_body(context, candidates)
        return parse_score(self._call("POST", "/v1/score", body, self._attempts(timeout_ms)), len(candidates))

    def similarity(
        self, query: Features, items: Sequence[Features], timeout_ms: float | None = None
    ) -> SimilarityResponse:
        """``POST /v1/similarity`` with items: one similarity per item, in order, and the model version."""
        body = similarity_body(query, items)
        return parse_similarity(self._call("POST", "/v1/similarity", body, self._attempts(timeout_ms)), len(items))

    def top_k(self, query: Features, k: int, timeout_ms: float | None = None) -> TopKResponse:
        """``POST /v1/similarity`` with k: the k best catalog items, best first, and the model version."""
        body = {"query": checked_features("query", query), "k": k}
        return parse_top_k(self._call("POST", "/v1/similarity", body, self._attempts(timeout_ms)))

    def models(self) -> list[ModelStatus]:
        """``GET /v1/models``: each role's model, its version and provider, or why it is not loaded."""
        return parse_models(self._call("GET", "/v1/models", None, self._attempts(None)))

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
        attempts = self._attempts(None, token, safe=False)
        return [int(v) for v in self._call("POST", f"/v2/repository/models/{name}/load", None, attempts)["versions"]]


def shown_url(url: str) -> str:
    """``url`` to be written in a message or a report: its credentials (``user:password@``, which httpx
    sends as Basic auth) as ``***@``; a report's ``command`` kept them, and reports are committed."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rsplit('@', 1)[1]}{slash}{path}"


def require_ready(url: str) -> None:
    """ValueError naming ``url`` unless a service there answers ``GET /v2/health/ready`` with 200: what a
    command given ``--url`` checks before it starts (an unreachable or malformed URL raised a traceback)."""
    if _probe(url, "GET", "/v2/health/ready") != 200:
        raise ValueError(f"--url {shown_url(url)}: the service answers but is not ready (GET /v2/health/ready)")


def require_admin(url: str, token: str) -> None:
    """ValueError unless the service at ``url`` takes ``token`` on its admin routes (``POST
    /v2/repository/index``): what ``ctr auction --url --admin-token`` checks before its first day, where a
    wrong token or a service without admin routes was found only at the first reload, a day's scoring
    and a training later, its exported version left in the repository."""
    status = _probe(url, "POST", "/v2/repository/index", token)
    if status == 404:
        raise ValueError(f"--url {shown_url(url)}: the service has no admin routes (start it with CTR_ADMIN_TOKEN)")
    if status != 200:
        raise ValueError(f"--admin-token: the service at {shown_url(url)} refuses it ({status})")


def _probe(url: str, method: str, path: str, token: str | None = None) -> int:
    """The status of one call to the service at ``url``; ValueError when nothing answers there."""
    try:
        with ScoringClient(url, timeout_s=5.0, max_retries=0) as client:
            return client._http.request(method, path, headers=_headers(token)).status_code
    except (httpx.TransportError, httpx.InvalidURL) as error:
        raise ValueError(
            f"--url {shown_url(url)}: no service answers there ({error or type(error).__name__})"
        ) from None


class AsyncScoringClient(_Client):
    """Asynchronous client over one pooled ``httpx.AsyncClient``: many requests in flight at once, in the
    event loop it first runs in."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = 16,
    ) -> None:
        super().__init__(base_url, timeout_s, max_retries, max_connections)
        self._http = httpx.AsyncClient(**self._pool)

    async def __aenter__(self) -> AsyncScoringClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any, attempts: _Attempts) -> Any:
        sent = None if body is None else encode(body)
        while True:
            content = bytearray()
            try:
                async with self._http.stream(method, path, content=sent, **attempts.options()) as response:
                    async for chunk in response.aiter_bytes():
                        attempts.arrived(content, chunk)
            except DROPPED:
                if not attempts.resend():
                    raise
                self.resent += 1
                continue
            wait = attempts.wait(response)
            if wait is None:
                return _decode(response, bytes(content))
            self.waits.append(wait)
            self.retried += 1
            await asyncio.sleep(wait)

    async def score(
        self, context: Features, candidates: Sequence[Features], timeout_ms: float | None = None
    ) -> ScoreResponse:
        body = score_body(context, candidates)
        return parse_score(await self._call("POST", "/v1/score", body, self._attempts(timeout_ms)), len(candidates))

    async def similarity(
        self, query: Features, items: Sequence[Features], timeout_ms: float | None = None
    ) -> SimilarityResponse:
        body = similarity_body(query, items)
        reply = await self._call("POST", "/v1/similarity", body, self._attempts(timeout_ms))
        return parse_similarity(reply, len(items))

    async def top_k(self, query: Features, k: int, timeout_ms: float | None = None) -> TopKResponse:
        body = {"query": checked_features("query", query), "k": k}
        return parse_top_k(await self._call("POST", "/v1/similarity", body, self._attempts(timeout_ms)))

    async def models(self) -> list[ModelStatus]:
        return parse_models(await self._call("GET", "/v1/models", None, self._attempts(None)))

    async def live(self) -> bool:
        return await self._health("/v2/health/live")

    async def ready(self) -> bool:
        return await self._health("/v2/health/ready")

    async def _health(self, path: str) -> bool:
        try:
            return (await self._http.get(path)).status_code == 200
        except httpx.TransportError:
            return False

    async def load_model(self, name: str, token: str) -> list[int]:
        attempts = self._attempts(None, token, safe=False)
        body = await self._call("POST", f"/v2/repository/models/{name}/load", None, attempts)
        return [int(v) for v in body["versions"]]
