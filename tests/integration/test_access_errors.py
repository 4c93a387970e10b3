"""An access line of a request answered with an error says why: ``error="<message>"`` (and an ``error`` field
in JSON logs), the message of its JSON body, on every route an error leaves from (the direct ``/v1/score``
route, the scoring endpoint through ASGI, the app's refusal of a content coding, FastAPI's routes). An
on-call audit found only the status: a burst of 422s could not be told from a burst of 404s, nor a
client's mistake from a refused model version, without reproducing the requests."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx
import orjson

from tests.support.access_log import access_lines
from tests.support.server import running_server
from tests.support.tiny_repository import repository

JSON = {"content-type": "application/json"}
BAD_SCORE = orjson.dumps({"context": {"user_id": "u_1"}, "candidates": [{"ad_id": "ad_1", "ad_price": "cheap"}]})
# 1,000 candidates with 1 ms to answer: reading, parsing and encoding them use the time before the model's queue
LATE_SCORE = orjson.dumps(
    {"context": {"user_id": "u_1"}, "candidates": [{"ad_id": f"ad_{i}", "ad_price": 1.0} for i in range(1000)]}
)
UNKNOWN_FIELD = orjson.dumps({"context": {"user_id": "u_1"}, "candidates": [{"ad_id": "ad_1", "bad\nkey": 1}]})
CALLS = [  # (request id, method, path, body, extra headers, status)
    ("direct", "POST", "/v1/score", BAD_SCORE, {}, 422),  # the protocol's direct route
    ("asgi-score", "POST", "/v1/score", gzip.compress(BAD_SCORE), {"content-encoding": "gzip"}, 422),
    ("coding", "POST", "/v1/score", BAD_SCORE, {"content-encoding": "br"}, 415),  # refused by the app itself
    ("no-model", "GET", "/v2/models/absent", None, {}, 404),  # a FastAPI route's
    ("head", "HEAD", "/v2/models/absent", None, {}, 404),  # answered as GET, on a copy of its scope
    ("malformed", "POST", "/v2/models/esmm/infer", b"{not json", {}, 400),
    ("newline", "POST", "/v1/score", UNKNOWN_FIELD, {}, 422),  # a message quoting a key with a line break
    ("late", "POST", "/v1/score", LATE_SCORE, {"x-request-timeout-ms": "1"}, 504),
    ("fine", "GET", "/v1/models", None, {}, 200),
]


def test_an_access_line_says_the_error_a_request_was_answered_with(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    for log_format in ("json", "text"):
        log = tmp_path / f"log.{log_format}"
        answered = {}
        with (
            running_server(root, log, ctr_model="esmm", log_format=log_format) as (url, _),
            httpx.Client(base_url=url, timeout=10) as client,
        ):
            for request_id, method, path, body, headers, status in CALLS:
                response = client.request(
                    method, path, content=body, headers=JSON | headers | {"x-request-id": request_id}
                )
                assert response.status_code == status, (request_id, response.text)
                answered[request_id] = response.json().get("error") if status >= 400 and method != "HEAD" else None
        answered["head"] = answered["no-model"]  # the same error, its body not sent
        said = access_errors(log.read_text(encoding="utf-8"), log_format)
        assert said == answered, (said, answered)
        assert "\\n" in said["newline"]  # quoted as the body quotes it: the line stays one line
        assert said["late"].startswith("deadline exceeded before model esmm:1's queue: "), said["late"]  # not "slow"


def access_errors(text: str, log_format: str) -> dict[str, str | None]:
    """Each access line's error (None where it says none) by its request id."""
    errors = {}
    for request_id, (message, fields) in access_lines(text, log_format).items():
        found = re.search(r' error=("(?:[^"\\]|\\.)*") request_id=', message)
        errors[request_id] = orjson.loads(found[1]) if found else None
        assert fields.get("error", errors[request_id]) == errors[request_id], fields
    return errors
