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
``asyncio.run``. A call from another loop raises ``RuntimeError`` saying so (httpx's own error, "Event loop is
closed", came from inside its pool).

One concept a module: the bodies a call sends (bodies.py) and its headers (headers.py), the answers read
(responses.py), ``ServiceError`` (errors.py), a 503's ``Retry-After`` (retry_after.py), the retry budget
(retry_budget.py), one call's attempts (attempts.py), what both clients share (base.py), the two clients
(sync_client.py, async_client.py) and the checks a command makes before it starts (preflight.py). The names
in ``__all__`` are the client's public ones: import them from ``clients.client``, as the project's own code
does; a name not exported (``encode``, ``checked_request_id``, ...) from the module that defines it.
"""

from __future__ import annotations

from clients.client.async_client import AsyncScoringClient
from clients.client.bodies import Features, FeatureValue
from clients.client.errors import ServiceError
from clients.client.preflight import require_admin, require_ready
from clients.client.responses import (
    ModelRef,
    ModelStatus,
    RankedItem,
    Score,
    ScoreResponse,
    SimilarityResponse,
    TopKResponse,
)
from clients.client.retry_budget import RetryBudget
from clients.client.sync_client import ScoringClient

__all__ = [
    "AsyncScoringClient",
    "FeatureValue",
    "Features",
    "ModelRef",
    "ModelStatus",
    "RankedItem",
    "RetryBudget",
    "Score",
    "ScoreResponse",
    "ScoringClient",
    "ServiceError",
    "SimilarityResponse",
    "TopKResponse",
    "require_admin",
    "require_ready",
]
