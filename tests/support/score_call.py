"""The /v1/score call of the typed client's tests, and the answers a stand-in for the service
(tests/support/stand_in.py) gives it as the service would: 200 with its scores (``SCORED``), and the 503 of an
overloaded queue (``overloaded``)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import orjson

from tests.support.stand_in import reply

CONTEXT = {"user_id": "u_1", "hour": "20"}
CANDIDATES = [{"ad_id": f"ad_{i}", "ad_price": 1.0 + i} for i in range(3)]
SCORED = orjson.dumps({"scores": [{"pctr": 0.1, "pctcvr": 0.01, "pcvr": 0.1}] * len(CANDIDATES), "models": {}})
OVERLOADED = b'{"error":"server overloaded: the model\'s queue is full","field":null}'


def overloaded(handler: BaseHTTPRequestHandler) -> None:
    """The answer the service gives a request its queue cannot take in time: 503, ``Retry-After: 1`` and
    its error body (the real service gives that only under load; what is tested is the client's side)."""
    reply(handler, 503, OVERLOADED, {"retry-after": "1"})
