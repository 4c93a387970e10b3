"""One call's attempts: each one's request and time-outs within what is left of the call's ``timeout_ms``,
the one resend of a call whose connection was dropped, and whether and how long a 503 is waited out."""

from __future__ import annotations

import math
import numbers
import random
import time
from contextlib import suppress
from typing import Any

import httpx

from clients.client.retry_after import retry_after
from clients.client.retry_budget import RetryBudget

MAX_RETRY_WAIT_S = 30.0  # a Retry-After longer than this is not waited for: the error is raised
RETRY_JITTER = 1.5  # a retry waits a random time between the Retry-After and this many times it
# Past a call's timeout_ms, how long the client still waits for the service's own 504 (min(this, a quarter of
# timeout_ms): Attempts.grace_s)
DEADLINE_GRACE_S = 0.05
GRACE_SHARE = 0.25
MIN_ATTEMPT_S = 0.001  # less left of timeout_ms than this: no attempt is sent (its header would say 0.000 ms)
TIMEOUT_HEADER = "x-request-timeout-ms"
# What an httpcore whose trace events no longer carry the request or its time-outs as 1.0 does would raise in
# Attempts._phase: the call then goes on as built (the header and time-outs of when it was built), not fails
UNTRACEABLE = (AttributeError, KeyError, TypeError, ValueError)


def check_positive_time(name: str, value: Any, unit: str) -> None:
    """A ValueError unless ``value`` is a finite number above 0; a TypeError naming ``name`` for what is no number
    (``timeout_ms="100"`` raised "'>' not supported between instances of 'str' and 'int'")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number of {unit}, not {type(value).__name__} ({value!r})")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number of {unit}, not {value}")


class Attempts:
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
        if timeout_ms is not None:
            check_positive_time("timeout_ms", timeout_ms, "milliseconds")
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
        asked = retry_after(response)
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
