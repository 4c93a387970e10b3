"""What the synchronous and the asynchronous client share: their settings, checked; the pool's options;
the retry budget and jitter; what they counted; and how a call's attempts are made."""

from __future__ import annotations

import numbers
import random
from collections import deque

import httpx

from clients.client.attempts import Attempts, check_positive_time
from clients.client.base_url import scheme_problem
from clients.client.headers import request_headers
from clients.client.retry_budget import RetryBudget
from common.shown_url import shown_url

DEFAULT_TIMEOUT_S = 10.0  # httpx's, for each phase of one HTTP exchange (clients/client/__init__.py)
DEFAULT_MAX_RETRIES = 3  # extra attempts after a 503 with Retry-After, each call's cap (RetryBudget rations them)
WAITS_KEPT = 1000  # the most recent retries' waits ``waits`` keeps
# The connection closed, reset or unwritable before an answer came: a call that changes nothing is sent again
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
# what an attempt was doing when httpx's time-out of that type came
PHASES = {
    httpx.ConnectTimeout: "connecting",
    httpx.WriteTimeout: "sending the request",
    httpx.ReadTimeout: "waiting for the answer",
}


class BaseClient:
    """What both clients hold: the pool's options, the retry limit and budget, and what they counted."""

    def __init__(self, base_url: str, timeout_s: float, max_retries: int, max_connections: int) -> None:
        problem = scheme_problem(base_url)
        if problem is not None:  # found at the first call before, as httpx's "unsupported protocol 'localhost://'"
            raise ValueError(f"base_url {problem}")
        check_positive_time("timeout_s", timeout_s, "seconds")
        for name, count in (("max_retries", max_retries), ("max_connections", max_connections)):
            if isinstance(count, bool) or not isinstance(count, numbers.Integral):
                raise TypeError(f"{name} must be an integer, not {type(count).__name__} ({count!r})")
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
    ) -> Attempts:
        headers = request_headers(token, request_id)
        return Attempts(method, path, headers, timeout_ms, self.max_retries, safe, self.retry_budget, self.random)

    def _named_timeout(self, attempts: Attempts, error: httpx.TimeoutException) -> httpx.TimeoutException | None:
        """httpx's own time-out, which says only "timed out" (or nothing: a pool's, asyncio's), as one of its type
        naming the call, the phase and the budget; None where the client's own message already names them."""
        if isinstance(error, httpx.PoolTimeout):
            return None if str(error) else self._pool_timeout(attempts)
        if str(error).startswith(attempts.call):
            return None
        budget = (
            f"timeout_s={self.timeout_s:g} (each phase's)"
            if attempts.timeout_ms is None
            else f"timeout_ms={attempts.timeout_ms:g}"
        )
        said = f"{attempts.call}: {budget} passed {PHASES.get(type(error), '')}"  # httpx's "timed out", or nothing
        return type(error)(said.rstrip(), request=attempts.request)

    def _unreachable(self, attempts: Attempts, error: httpx.ConnectError) -> httpx.ConnectError:
        """httpx's ConnectError, which names no address ("[Errno 111] Connection refused"; the async client's "All
        connection attempts failed"), as one of its type naming the call and the service's URL."""
        reason = str(error) or type(error).__name__
        where = shown_url(str(self._pool["base_url"]))
        return httpx.ConnectError(f"{attempts.call}: nothing answers at {where} ({reason})", request=attempts.request)

    def _pool_timeout(self, attempts: Attempts) -> httpx.PoolTimeout:
        """httpx's PoolTimeout, which says nothing (its message is empty), as one naming the call and the wait."""
        waited = (
            f"timeout_s={self.timeout_s:g}" if attempts.timeout_ms is None else f"timeout_ms={attempts.timeout_ms:g}"
        )
        return httpx.PoolTimeout(
            f"{attempts.call}: {waited} passed waiting for a pooled connection (all max_connections="
            f"{self.max_connections} in use: allow more, or send fewer calls at once)",
            request=attempts.request,
        )
