"""/v1/score bodies of the tiny ESMM's features that the service scores (every feature of a row valid)."""

from __future__ import annotations

TWO_CANDIDATES = {
    "context": {"user_id": "u"},
    "candidates": [{"ad_id": "a", "ad_price": 1.0}, {"ad_id": "b", "ad_price": 2.0}],
}
SEVEN_CANDIDATES = {
    "context": {"user_id": "u1"},
    "candidates": [{"ad_id": f"a{i}", "ad_price": 1.0 + i} for i in range(7)],
}
