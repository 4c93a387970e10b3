"""The retries a client may still make after 503s: gRPC's retry throttling, shared by its threads or
tasks."""

from __future__ import annotations

import threading

RETRY_TOKENS = 10  # a client's retry budget: gRPC A6's retryThrottling maxTokens
RETRY_TOKEN_RATIO = 0.1  # given back by each 200 (tokenRatio); a 503 is retried while > RETRY_TOKENS / 2 are left


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
