"""How long a 503 asks the client to wait: its ``Retry-After``, seconds or an HTTP date."""

from __future__ import annotations

import math
import time
from contextlib import suppress
from email.utils import parsedate_to_datetime

import httpx


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a 503 asks to wait (Retry-After: seconds, or an HTTP date), or None. A date is counted from the
    answer's own ``Date`` (RFC 9110 §10.2.3), both read on the sender's clock; from this machine's clock only
    when the answer has none: a client clock 60 s ahead of a proxy's retried at once, and one 60 s behind
    read a 4 s wait as 64 s, past ``MAX_RETRY_WAIT_S`` (attempts.py), and did not retry at all."""
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
