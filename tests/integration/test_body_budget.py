"""The large bodies' budget (``CTR_BODY_BYTES_IN_FLIGHT``, service/app.py) on a real uvicorn on loopback: a
body that may pass 32 KiB waits for its share before its first byte is read, and is answered 503 if the share
does not come within half the body time-out; a request its route refuses from its head alone is answered at
once and takes none (it waited behind the other bodies, and on a slow host was answered 503 instead)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.metrics import gauge
from tests.support.server import port_of, running_server
from tests.support.tiny_repository import repository

DECLARED = 1_000_000  # of the 1 MiB budget: a second body past 48,576 bytes waits for it
JSON = {"content-type": "application/json"}


@contextmanager
def budget_held(url: str) -> Iterator[None]:
    """A /v1/score request that declares ``DECLARED`` bytes and sends one: it holds that much of the budget
    until its body time-out."""
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:
        raw.sendall(
            b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {DECLARED}\r\n\r\n{{".encode()
        )
        deadline = time.monotonic() + 5
        while gauge(url, "ctr_http_body_bytes_in_flight") != DECLARED:
            assert time.monotonic() < deadline, "the trickling body never took its share"
            time.sleep(0.02)
        yield


def test_refused_from_its_head_at_once_while_a_large_body_waits_for_its_share(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    settings = {"max_body_bytes": "1048576", "body_bytes_in_flight": "1048576", "body_timeout_s": "4"}
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", **settings) as (url, _):
        oversized = b"[" + b"0," * 450_000 + b"0]"  # 900,003 bytes: more than any valid infer body for the model
        with budget_held(url), httpx.Client(base_url=url, timeout=10) as client:
            too_large = client.post("/v2/models/esmm/infer", content=oversized, headers=JSON)
            unknown = client.post("/v2/models/nope/infer", content=oversized, headers=JSON)
            assert gauge(url, "ctr_http_bodies_waiting") == 0  # neither ever waited
            # a body of a valid size still waits for its share, and is refused when it does not come in time
            waited = client.post("/v1/score", content=b" " * 100_000, headers=JSON)
        assert too_large.status_code == 413, too_large.text
        assert "an infer request of at most 1000 rows" in too_large.json()["error"]
        assert unknown.status_code == 404, unknown.text
        assert waited.status_code == 503, waited.text
        assert waited.json()["error"] == "server busy reading other large bodies"
        assert waited.headers["retry-after"] == "1"
        assert gauge(url, "ctr_http_bodies_waiting") == 0
        time.sleep(4.5)  # the holder's body time-out: its share is given back
        assert gauge(url, "ctr_http_body_bytes_in_flight") == 0
        body = json.dumps({"context": {"user_id": "u"}, "candidates": [{"ad_id": "a" * 80, "ad_price": 1.0}] * 400})
        assert len(body) > 32 * 1024
        assert httpx.post(f"{url}/v1/score", content=body, headers=JSON).status_code == 200
