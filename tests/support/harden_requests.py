"""What the hardening tests send the service: a /v1/score body of ten candidates (``BODY``), its JSON bytes as
`ctr bench harden`'s load sends them (``PAYLOAD``), and the admin token the service is started with (``TOKEN``)
with the header that carries it (``AUTH``)."""

from __future__ import annotations

import httpx

TOKEN = "hardening-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = {"context": {"user_id": "u_1"}, "candidates": [{"ad_id": f"ad_{i}", "ad_price": 1.0 + i} for i in range(10)]}
PAYLOAD = httpx.Request("POST", "http://x", json=BODY).content
