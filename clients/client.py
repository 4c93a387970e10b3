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
status, the service's ``error`` message, the request ``field`` at fault and the answer's ``X-Request-ID``.
A call that changes nothing on the service (scoring, similarity, the model list) whose connection is
dropped before its answer is sent once more, on a fresh connection: HTTP/1.1's keep-alive race, where the
service closes an idle connection as a request goes out on it (docs/serving-log.md, "The keep-alive
race"). Other transport failures (refused connection, timeout) are httpx's own exceptions, each with its
``request`` set and, where the client raises it, a message naming the call and its budget.

Retries of a 503 are spread and rationed, so that an overloaded service is not answered with more load:
each waits a random time between the ``Retry-After`` and 1.5 times it (never sooner than the service
asked, a date counted from the answer's ``Date``; the client's own ``random``, which a test may seed), so
that calls refused together do not come back together; and a client's retries share one budget
(``RetryBudget``: gRPC's retry throttling, proposal A6), shared by its threads or tasks: each 503 with a
``Retry-After`` takes a token from a bucket of 10 (one without, a model not loaded, is not retried and
takes none), each 200 gives a tenth of one back, and a 503 is retried only while more than 5 are left. A
fresh client retries 4 of a row of 503s; from the threshold on, one for about every 10 calls answered
200; a 503 past the budget is raised at once. ``max_retries`` stays each call's own cap.

A call's ``timeout_ms`` bounds the whole call: each phase of each attempt (waiting for a pooled
connection, connecting, sending, waiting for the answer) gets only what is left of it, the service is
told what is left as the request goes out (``X-Request-Timeout-Ms``, written after the wait for a
connection; the service answers 504 past it), and a 503 is waited out only where its wait fits in what
is left (else that 503 is raised). httpx's ``TimeoutException`` is raised at most ``timeout_ms`` plus a
grace of ``min(DEADLINE_GRACE_S, timeout_ms / 4)`` after the call began (the grace lets the service's own
504 come back first; the pool wait gets none of it), but for an answer that arrives in pieces: one
still arriving then is cut at its next piece. Without ``timeout_ms`` a call has no bound of its own:
``timeout_s`` is httpx's, which holds for each phase of one HTTP exchange (connecting, each read, each
write, waiting for a pooled connection), not for the exchange as a whole.

A call may send a ``request_id`` (``X-Request-ID``: the service echoes it and writes it in its access
line); one the service would refuse (not 1 to 200 visible ASCII characters without spaces) is a
``ValueError`` before anything is sent.

Feature values are checked before anything is sent: NaN and infinity are refused with ``ValueError``
naming the feature (JSON has no such numbers, and the encoder would have sent ``null``: the feature's
default, or "missing"); numpy scalars are sent as the numbers they hold (a float32 as the float64 it is, not
orjson's shortest float32 digits); text holding a lone UTF-16 surrogate (``"x\\ud83d"``, a string cut inside an
emoji) is refused with ``ValueError``, and a value of a type JSON has not (bytes) with ``TypeError``, each naming
the feature (looked for once the JSON encoder refused the body). An answer whose shape does not fit the request
(another number of scores than candidates) raises ``ValueError``.

``AsyncScoringClient`` belongs to the event loop it first runs in (httpx's pool does): make one per
``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import numpy as np
import orjson

from common.shown_url import shown_url

FeatureValue = str | int | float | None
Features = Mapping[str, FeatureValue]

DEFAULT_TIMEOUT_S = 10.0  # httpx's, for each phase of one HTTP exchange (module docstring)
DEFAULT_MAX_RETRIES = 3  # extra attempts after a 503 with Retry-After, each call's cap (RetryBudget rations them)
MAX_RETRY_WAIT_S = 30.0  # a Retry-After longer than this is not waited for: the error is raised
RETRY_JITTER = 1.5  # a retry waits a random time between the Retry-After and this many times it
RETRY_TOKENS = 10  # a client's retry budget: gRPC A6's retryThrottling maxTokens
RETRY_TOKEN_RATIO = 0.1  # given back by each 200 (tokenRatio); a 503 is retried while > RETRY_TOKENS / 2 are left
# Past a call's timeout_ms, how long the client still waits for the service's own 504 (min(this, a quarter of
# timeout_ms): _Attempts.grace_s)
DEADLINE_GRACE_S = 0.05
GRACE_SHARE = 0.25
MIN_ATTEMPT_S = 0.001  # less left of timeout_ms than this: no attempt is sent (its header would say 0.000 ms)
MAX_REQUEST_ID = 200  # the service's limit on an X-Request-ID (service/http/request_head.py)
ERROR_TEXT_KEPT = 500  # characters kept of an error answer that is not the service's JSON (a proxy's HTML page)
WAITS_KEPT = 1000  # the most recent retries' waits ``waits`` keeps
# The connection closed, reset or unwritable before an answer came: a call that changes nothing is sent again
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class ServiceError(Exception):
    """A non-200 answer: ``status``, the service's ``error`` message, the ``field`` at fault, for a 503
    the seconds its ``Retry-After`` asked to wait (also when longer than the client waits), and the
    answer's ``X-Request-ID`` (``request_id``: the one the call sent, which the service echoes, or the one
    the service gave a call that sent none)."""

    def __init__(
        self,
        status: int,
        error: str,
        field: str | None = None,
        retry_after_s: float | None = None,
        request_id: str | None = None,
    ) -> None:
        said = f"{status}: {error}" + (f" (field {field})" if field else "")
        super().__init__(said + (f" (X-Request-ID {request_id})" if request_id else ""))
        self.status = status
        self.error = error
        self.field = field
        self.retry_after_s = retry_after_s
        self.request_id = request_id

    def __reduce__(self) -> tuple[type[ServiceError], tuple[int, str, str | None, float | None, str | None]]:
        return ServiceError, (self.status, self.error, self.field, self.retry_after_s, self.request_id)  # pickle, copy


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
    sha256: str | None = None  # of the newest served version's model.onnx: the same on every machine serving it
    version_sha256: dict[str, str] | None = None  # each served version (as a string) -> its model.onnx's sha256
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
    (text, integers, finite floats) pass on a type check; the name is written only for an error. A numpy float
    is replaced by the float64 it holds: orjson writes a float32 in its shortest float32 digits (62.51054 for
    62.51054000854492), which the service reads as another number, one float32 step off ``ctr score``. Anything
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
        if isinstance(value, np.floating):
            values[name] = float(value)
    return values


def score_body(
    context: Features, candidates: Sequence[Features], versions: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """A ``/v1/score`` body; ``versions`` (model name -> served version) pins the versions that score it."""
    body = {
        "context": checked_features("context", context),
        "candidates": [checked_features("candidates", c, i) for i, c in enumerate(candidates)],
    }
    return body if versions is None else body | {"versions": dict(versions)}


def similarity_body(query: Features, items: Sequence[Features]) -> dict[str, Any]:
    return {
        "query": checked_features("query", query),
        "items": [checked_features("items", c, i) for i, c in enumerate(items)],
    }


def encode(body: Any) -> bytes:
    """``body`` as JSON; a feature value JSON cannot carry is refused naming it (``_unsendable``), looked for only
    once orjson refused the body, so that a call pays no check per value for it."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError as error:
        refused = _unsendable(body)
        if refused is None:
            raise
        raise refused from error


def _unsendable(body: Any) -> Exception | None:
    """The error naming the first feature of ``body`` (``where.name``, ``where[index].name``, as
    ``checked_features`` names one) whose value or name orjson cannot write: text holding a lone UTF-16
    surrogate, a ValueError (it is no Unicode, and orjson said "str is not valid UTF-8" naming nothing); a value
    of a type JSON has none of (bytes: "Type is not JSON serializable: bytes"), a TypeError. None where no
    feature is at fault."""
    if not isinstance(body, Mapping):
        return None
    for where, listed in body.items():  # context, candidates, query, items (versions too)
        rows = enumerate(listed) if isinstance(listed, list) else [(None, listed)]
        for index, features in rows:
            if not isinstance(features, Mapping):
                continue
            named = where if index is None else f"{where}[{index}]"
            for name, value in features.items():
                if not _writable(value):
                    return _refused_value(f"{named}.{name}", value)
                if not _writable(name):
                    return ValueError(f"{named} has a feature named {name!r}, which JSON cannot carry: {_why(name)}")
    return None


def _writable(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return False
    return True


def _refused_value(named: str, value: Any) -> Exception:
    if isinstance(value, str):
        return ValueError(f"{named} is {_shortened(repr(value))}, which JSON cannot carry: {_why(value)}")
    decode = "; decode bytes to text" if isinstance(value, bytes | bytearray) else ""
    return TypeError(
        f"{named} is {type(value).__name__} ({_shortened(repr(value))}), which JSON cannot carry: send text, an "
        f"integer or a finite number{decode}"
    )


def _why(text: str) -> str:
    """Why orjson refuses a str: the lone UTF-16 surrogate it holds (JavaScript's text cut inside an emoji)."""
    surrogate = next((c for c in text if "\ud800" <= c <= "\udfff"), None)
    if surrogate is None:
        return "not valid Unicode"
    return (
        f"it holds U+{ord(surrogate):04X}, half of a UTF-16 surrogate pair, which is no character; send the "
        "character whole, or U+FFFD in its place"
    )


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
    request_id = response.headers.get("x-request-id")
    if response.status_code == 200:
        raise ServiceError(200, f"the answer is not JSON: {text[:200]!r}", request_id=request_id)
    error = body.get("error") if isinstance(body, dict) else None
    field = body.get("field") if isinstance(body, dict) else None
    said = str(error) if error else _shortened(text) or "no body"
    raise ServiceError(response.status_code, said, field, _retry_after(response), request_id)


def _shortened(text: str) -> str:
    """An answer's text as an error message: a proxy's HTML page of 100 KB is cut to ``ERROR_TEXT_KEPT``
    characters and "…", where it filled a log line, the auction's report and every ``str(error)``."""
    return text if len(text) <= ERROR_TEXT_KEPT else text[:ERROR_TEXT_KEPT] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a 503 asks to wait (Retry-After: seconds, or an HTTP date), or None. A date is counted from the
    answer's own ``Date`` (RFC 9110 §10.2.3), both read on the sender's clock; from this machine's clock only
    when the answer has none: a client clock 60 s ahead of a proxy's retried at once, and one 60 s behind
    read a 4 s wait as 64 s, past ``MAX_RETRY_WAIT_S``, and did not retry at all."""
    value = response.headers.get("retry-after")
    if response.status_code != 503 or value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - _sent_at(response)
        except (TypeError, ValueError):
            return None
        seconds = max(seconds, 0.0)
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def _sent_at(response: httpx.Response) -> float:
    """When the answer was sent, by its sender's clock (its ``Date``), else by this machine's (no ``Date``, or
    one that is no HTTP date)."""
    date = response.headers.get("date")
    if date is not None:
        with suppress(TypeError, ValueError):
            return parsedate_to_datetime(date).timestamp()
    return time.time()


def _headers(token: str | None = None, request_id: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if request_id is not None:
        headers["x-request-id"] = checked_request_id(request_id)
    return headers


def checked_request_id(request_id: str) -> str:
    """``request_id`` if the service takes it as an ``X-Request-ID`` (1 to ``MAX_REQUEST_ID`` visible ASCII
    characters, no spaces: service/http/request_head.py's rule, which a test holds the two to), else a
    ValueError naming it: the service would answer with an id of its own (the caller's only in its log line,
    as ``refused_request_id``), or httpx refuse a non-ASCII header, after the call had been sent. The rule is
    written here, not imported: the client does not depend on the service."""
    if not isinstance(request_id, str):
        raise ValueError(f"request_id must be text, not {type(request_id).__name__}")
    # Printable ASCII is 0x20 to 0x7E: the visible characters and the space
    visible = request_id.isascii() and request_id.isprintable() and " " not in request_id
    if visible and 0 < len(request_id) <= MAX_REQUEST_ID:
        return request_id
    shown = repr(request_id[:40]) + ("…" if len(request_id) > 40 else "")
    raise ValueError(
        f"request_id {shown} ({len(request_id)} characters) is no X-Request-ID the service takes: send 1 to "
        f"{MAX_REQUEST_ID} visible ASCII characters, without spaces"
    )


class RetryBudget:
    """The retries a client may still make, shared by its threads or tasks: gRPC's retry throttling
    (proposal A6). Each retryable 503 (with ``Retry-After``) takes one of ``RETRY_TOKENS`` tokens, each 200
    gives ``RETRY_TOKEN_RATIO`` back, and a 503 may be retried only while more than half the tokens are left:
    a fresh client retries 4 times in a row of 503s, then, at the threshold, about once per 10 answered
    calls, where 3 retries a call multiplied the
    load on an overloaded service by 4. A dropped connection (the keep-alive race) takes nothing: its
    request never reached the service. Counted in thousandths, as A6 asks (0.1 added ten times is not 1.0
    in floating point)."""

    def __init__(self, tokens: float = RETRY_TOKENS, ratio: float = RETRY_TOKEN_RATIO) -> None:
        self._most = round(tokens * 1000)
        self._ratio = round(ratio * 1000)
        self._left = self._most
        self._lock = threading.Lock()  # an uncontended lock costs a few tens of ns, in a task as in a thread

    @property
    def tokens(self) -> float:
        return self._left / 1000

    def refused(self) -> bool:
        """A 503 came: takes a token, and says whether it may be retried."""
        with self._lock:
            self._left = max(self._left - 1000, 0)
            return self._left > self._most // 2

    def answered(self) -> None:
        """A 200 came: gives part of a token back."""
        with self._lock:
            self._left = min(self._left + self._ratio, self._most)


TIMEOUT_HEADER = "x-request-timeout-ms"
# What an httpcore whose trace events no longer carry the request or its time-outs as 1.0 does would raise in
# _Attempts._phase: the call then goes on as built (the header and time-outs of when it was built), not fails
UNTRACEABLE = (AttributeError, KeyError, TypeError, ValueError)


class _Attempts:
    """One call's attempts: each one's request (its headers with what is left of ``timeout_ms``, httpx's
    time-outs, both brought up to date as each phase starts), whether a dropped connection is sent once
    more, and whether and how long a 503 is waited out."""

    def __init__(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        timeout_ms: float | None,
        max_retries: int,
        safe: bool,
        budget: RetryBudget,
        jitter: random.Random,
    ) -> None:
        if timeout_ms is not None and not (timeout_ms > 0 and math.isfinite(timeout_ms)):
            raise ValueError(f"timeout_ms must be a positive number of milliseconds, not {timeout_ms}")
        self.method = method
        self.path = path
        self.headers = headers
        self.timeout_ms = timeout_ms
        self.deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        # The grace: how long past timeout_ms the client still waits for the service's own 504, which the
        # service sends at the deadline the header gave it, before raising a TimeoutException of its own.
        # It has only that answer's way back and either side's scheduling slack to cover: a fixed 50 ms was
        # ample for a 1 s budget but let a 20 ms ad-server budget run to 70 ms (3.5 times). A quarter of the
        # budget keeps every call within 1.25 times its timeout_ms and still leaves a 20 ms call 5 ms for a
        # 504 to come back over loopback or a LAN (well under 1 ms); a 504 later than that says no more than
        # the client's own time-out does.
        self.grace_s = 0.0 if timeout_ms is None else min(DEADLINE_GRACE_S, GRACE_SHARE * timeout_ms / 1000.0)
        self.retries_left = max_retries
        self.safe = safe
        self.budget = budget
        self.jitter = jitter
        self.resent = False  # this attempt's one resend is spent
        self.built = 0  # attempts built so far
        self.request: httpx.Request | None = None  # the latest attempt's, which the client's own errors carry
        request_id = headers.get("x-request-id")
        self.call = f"{method} {path}" + (f" (X-Request-ID {request_id})" if request_id else "")

    def request_for(self, http: httpx.Client | httpx.AsyncClient, content: bytes | None) -> httpx.Request:
        """The next attempt's request; a TimeoutException where too little is left of ``timeout_ms`` to send it."""
        if self.deadline is None:
            self.request = http.build_request(self.method, self.path, content=content, headers=self.headers)
            return self.request
        left_s = self.deadline - time.monotonic()
        # The header is written again as the request goes out (_phase); this value stands where no phase is
        # traced (a transport of the caller's own). Waiting for a pooled connection gets no grace: the
        # service has not heard of the call yet.
        self.request = http.build_request(
            self.method,
            self.path,
            content=content,
            headers={**self.headers, TIMEOUT_HEADER: _milliseconds(left_s)},
            timeout=httpx.Timeout(left_s + self.grace_s, pool=max(left_s, 0.0)),
            extensions={"trace": self._phase if isinstance(http, httpx.Client) else self._async_phase},
        )
        if left_s < MIN_ATTEMPT_S:  # the service would refuse a time-out header of 0.000 ms with a 400
            if self.built == 0:
                raise httpx.TimeoutException(
                    self._said(f"leaves no time for an attempt (at least {MIN_ATTEMPT_S * 1000:g} ms)"),
                    request=self.request,
                )
            raise httpx.TimeoutException(self._said("passed before an answer came"), request=self.request)
        self.built += 1
        return self.request

    def _phase(self, event: str, info: dict[str, Any]) -> None:
        """httpx's ``trace`` extension, called by httpcore as each phase of an attempt starts (connecting,
        ``http11.send_request_headers``, ``http11.receive_response_headers``, ...): the phase gets only what
        is left of the call's budget and its grace, and the time-out header is written as the request goes
        out, after any wait for a pooled connection (written when the request was built, it gave the
        service the time that wait had spent as well). httpcore sends the request it passes here, so this
        event is the one place between the pool and the wire to write it; under a transport that traces
        nothing the value written when the request was built stands."""
        if not event.endswith(".started") or event.endswith(".response_closed.started") or self.deadline is None:
            return
        now = time.monotonic()
        rest_s = self.deadline + self.grace_s - now
        if event.endswith(".send_request_headers.started"):
            left_s = self.deadline - now
            if left_s < MIN_ATTEMPT_S:
                raise httpx.TimeoutException(
                    self._said("passed before the request went out (waiting for a connection)"), request=self.request
                )
            value = _milliseconds(left_s).encode("ascii")
            with suppress(*UNTRACEABLE):
                sent = info["request"]
                sent.headers = [(k, value if k.lower() == TIMEOUT_HEADER.encode() else v) for k, v in sent.headers]
        elif rest_s <= 0:
            raise httpx.TimeoutException(self._said("passed before an answer came"), request=self.request)
        with suppress(*UNTRACEABLE):
            if "timeout" in info:  # connecting: httpcore read the time-out from the request before this event
                info["timeout"] = rest_s
            if "request" in info:
                phases = ("connect", "read", "write", "pool")
                info["request"].extensions["timeout"] = dict.fromkeys(phases, rest_s)

    async def _async_phase(self, event: str, info: dict[str, Any]) -> None:
        self._phase(event, info)  # httpcore awaits the trace of an asynchronous client

    def _said(self, what: str) -> str:
        return f"{self.call}: timeout_ms={self.timeout_ms:g} {what}"

    def arrived(self, content: bytearray, chunk: bytes) -> None:
        """Adds an answer's ``chunk`` to its ``content``; ReadTimeout once timeout_ms (and the grace) passed:
        a service that trickles its answer is not waited on past the call's budget."""
        content += chunk
        if self.deadline is not None and time.monotonic() > self.deadline + self.grace_s:
            raise httpx.ReadTimeout(self._said("passed while the answer was still arriving"), request=self.request)

    def resend(self) -> bool:
        """Whether a call whose connection was dropped is sent once more (once an attempt, a safe call)."""
        if not self.safe or self.resent:
            return False
        self.resent = True
        return True

    def wait(self, response: httpx.Response) -> float | None:
        """Seconds to wait before the next attempt, or None: this answer is the call's. A 503 takes from the
        retry budget and a 200 gives back to it (RetryBudget); a retry waits a random time between the
        Retry-After and RETRY_JITTER times it, so that calls refused together do not all come back together,
        within what is left of timeout_ms."""
        if response.status_code == 200:
            self.budget.answered()
        if response.status_code != 503:
            return None
        asked = _retry_after(response)
        if asked is None:  # not a 503 this client retries (a model not loaded): no retry, nothing taken
            return None
        # every retryable 503 counts, retried or not (gRPC A6 counts the retryable status codes alone: a run of
        # "not loaded" 503s emptied the bucket, and the next overload 503 was not retried until 51 answers came)
        affordable = self.budget.refused()
        if asked > MAX_RETRY_WAIT_S or self.retries_left == 0 or not affordable:
            return None
        longest = RETRY_JITTER * asked
        if self.deadline is not None:  # the next attempt needs its grace (and something to send) after the wait
            longest = min(longest, self.deadline - time.monotonic() - max(self.grace_s, MIN_ATTEMPT_S))
            if longest < asked:
                return None  # no time for an attempt after the wait: the 503 is the answer, not a certain 504
        self.retries_left -= 1
        self.resent = False
        return self.jitter.uniform(asked, longest)


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000.0:.3f}"


class _Client:
    """What both clients hold: the pool's options, the retry limit and budget, and what they counted."""

    def __init__(self, base_url: str, timeout_s: float, max_retries: int, max_connections: int) -> None:
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 (no retry) or more, not {max_retries}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be 1 or more, not {max_connections}")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_connections = max_connections
        self.retry_budget = RetryBudget()  # shared by every call of this client, in any thread or task
        self.random = random.Random()  # the retries' jitter: the client's own, which a test may seed
        self.waits: deque[float] = deque(maxlen=WAITS_KEPT)  # the latest retries' waits, in seconds (jittered)
        self.resent = 0  # calls sent again after their connection was dropped (DROPPED)
        self.retried = 0  # calls sent again after a 503's Retry-After
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._pool = {"base_url": base_url, "timeout": timeout_s, "limits": limits}

    def _attempts(
        self,
        method: str,
        path: str,
        timeout_ms: float | None = None,
        token: str | None = None,
        safe: bool = True,
        request_id: str | None = None,
    ) -> _Attempts:
        headers = _headers(token, request_id)
        return _Attempts(method, path, headers, timeout_ms, self.max_retries, safe, self.retry_budget, self.random)

    def _pool_timeout(self, attempts: _Attempts) -> httpx.PoolTimeout:
        """httpx's PoolTimeout, which says nothing (its message is empty), as one naming the call and the wait."""
        waited = (
            f"timeout_s={self.timeout_s:g}" if attempts.timeout_ms is None else f"timeout_ms={attempts.timeout_ms:g}"
        )
        return httpx.PoolTimeout(
            f"{attempts.call}: {waited} passed waiting for a pooled connection (all max_connections="
            f"{self.max_connections} in use: allow more, or send fewer calls at once)",
            request=attempts.request,
        )


class ScoringClient(_Client):
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

    def _call(self, attempts: _Attempts, body: Any) -> Any:
        """One call, waiting out 503s with Retry-After within its budget (``_Attempts``)."""
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
            except httpx.PoolTimeout as error:
                if str(error):
                    raise
                raise self._pool_timeout(attempts) from error
            wait = attempts.wait(response)
            if wait is None:
                return _decode(response, bytes(content))
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


def require_ready(url: str) -> None:
    """ValueError naming ``url`` unless a service there answers ``GET /v2/health/ready`` with 200: what a
    command given ``--url`` checks before it starts (an unreachable or malformed URL raised a traceback). A 404
    is said as no service there: ``python -m http.server`` or a URL ending ``/v1`` was "answers but is not ready"."""
    status = _probe(url, "GET", "/v2/health/ready")
    if status == 404:  # another HTTP server, or a URL with a path the service is not under
        raise ValueError(
            f"--url {shown_url(url)}: GET /v2/health/ready answered 404: no ctr service there (another server, or a"
            " path in the URL the service is not mounted under)"
        )
    if status != 200:
        raise ValueError(
            f"--url {shown_url(url)}: the service answers but is not ready (GET /v2/health/ready: {status})"
        )


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

    async def _call(self, attempts: _Attempts, body: Any) -> Any:
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
            except httpx.PoolTimeout as error:
                if str(error):
                    raise
                raise self._pool_timeout(attempts) from error
            wait = attempts.wait(response)
            if wait is None:
                return _decode(response, bytes(content))
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
        try:
            return (await self._http.get(path)).status_code == 200
        except httpx.TransportError:
            return False

    async def load_model(self, name: str, token: str) -> list[int]:
        attempts = self._attempts("POST", f"/v2/repository/models/{name}/load", token=token, safe=False)
        return [int(v) for v in (await self._call(attempts, None))["versions"]]
