"""Score requests sent one after another until told to stop, for the tests of what the service does under
traffic (a reload, a worker's restart): the statuses of their answers, counted."""

from __future__ import annotations

import threading
from collections import Counter

import httpx

BODY = {"context": {"user_id": "u_1"}, "candidates": [{"ad_id": f"ad_{i}", "ad_price": 1.0 + i} for i in range(5)]}


def score_continuously(url: str, stop: threading.Event) -> Counter:
    statuses: Counter = Counter()
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            statuses[client.post(f"{url}/v1/score", json=BODY).status_code] += 1
    return statuses
