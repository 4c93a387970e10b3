"""The lines an SRE needs to explain a failed request (an audit of one failed bid): a request whose client
left before its answer has an access line, 499 (nginx's), once, on a direct route and an ASGI one alike
(it had none); a failure of the service (>= 500) is a warning; with the access log off the failures still
have their lines; a refused head is logged once, with its status, error and request id as fields (uvicorn
added a warning without the id)."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
import orjson

from service.http.failure_lines import LINES_PER_S
from tests.support.metrics import pending, responses
from tests.support.server import port_of, running_server
from tests.support.tiny_repository import repository
from tests.support.v2_bodies import infer_body
from tests.support.wait import eventually

JSON = {"content-type": "application/json"}
LATE = JSON | {"x-request-timeout-ms": "0.001"}  # its deadline passes before the model answers: 504
# a request waits for its batch to fill, long enough for its client to leave
SLOW_BATCHES = "max_batch_size = 1024\nmax_queue_delay_us = 500000"
SCORE = orjson.dumps(
    {"context": {"user_id": "u"}, "candidates": [{"ad_id": f"a{i}", "ad_price": 1.0} for i in range(1000)]}
)
INFER_PATH = "/v2/models/esmm/infer"
FIRST_VERSION_INFER_PATH = "/v2/models/esmm/versions/1/infer"
INFER = orjson.dumps({**infer_body([[0, 50, 74]], [[0.0, 0.0]]), "id": "bid-9"})  # tritonclient's request_id
REFUSALS = 25  # more than two seconds' lines: some are held back, whichever seconds they fall in


def post(path: str, body: bytes, request_id: str) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return f"{head}x-request-id: {request_id}\r\n\r\n".encode() + body


def leave_while_pending(http: httpx.Client, request: bytes, version: int) -> None:
    """Sends the request to esmm ``version``, whose batcher holds no other, and closes the connection once
    /metrics shows it waiting there for its batch to fill (``SLOW_BATCHES``' 0.5 s), before its answer. The
    polls go through one client (``http``): a client per poll loads its CA bundle each time."""
    with socket.create_connection(("127.0.0.1", http.base_url.port), timeout=10) as raw:
        raw.sendall(request)
        eventually(lambda: pending(http, version) == 1, 5, "the request pending", every_s=0.01)


def fail_late(url: str) -> None:
    """A 504 on the direct route (late-direct) and one on an ASGI route (late-asgi)."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for path, body, request_id in (("/v1/score", SCORE, "late-direct"), (INFER_PATH, INFER, "late-asgi")):
            assert client.post(path, content=body, headers=LATE | {"x-request-id": request_id}).status_code == 504


def by_id(log: Path) -> dict[str, list[dict]]:
    """Every JSON line that names a request id, by the id."""
    lines: dict[str, list[dict]] = {}
    for text in log.read_text(encoding="utf-8").splitlines():
        line = orjson.loads(text) if text.startswith("{") else {}
        if "request_id" in line:
            lines.setdefault(line["request_id"], []).append(line)
    return lines


def refusals_said(log: Path) -> tuple[int, int]:
    """(the refusals' lines, the lines counted as held back)."""
    text = log.read_text(encoding="utf-8")
    return text.count("refused a request (400)"), sum(map(int, re.findall(r'"(\d+) more access line', text)))


def test_a_client_that_left_has_a_499_line_and_failures_are_warnings(tmp_path: Path) -> None:
    """The two requests whose clients leave go to two versions of esmm, each the only request in its batcher.
    In one batcher the second was queued behind the first, which stays at the queue's head, abandoned, until
    the next batch is formed: their batch formed when the first's fill wait ended, so the second had only what
    was left of it, and a client slow to send the second had it answered 200 before it could leave."""
    root = repository(tmp_path / "models", SLOW_BATCHES, versions=2)
    log = tmp_path / "log"
    with (
        running_server(root, log, ctr_model="esmm", log_format="json") as (url, _),
        httpx.Client(base_url=url, timeout=5) as http,
    ):
        counted = responses(url, 499)
        leave_while_pending(http, post("/v1/score", SCORE, "gone-direct"), 2)  # the protocol's direct route: the newest
        leave_while_pending(http, post(FIRST_VERSION_INFER_PATH, INFER, "gone-asgi"), 1)  # an ASGI route
        eventually(lambda: responses(url, 499) == counted + 2, 5, "both 499s counted")
        fail_late(url)
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:  # no Host header: 400
            raw.sendall(b"GET /v1/models HTTP/1.1\r\nx-request-id: refused-1\r\n\r\n")
            assert raw.recv(65536).startswith(b"HTTP/1.1 400 ")
        time.sleep(0.6)  # the batches the gone requests waited for run: their answers write no line
    lines = by_id(log)
    for request_id in ("gone-direct", "gone-asgi"):
        (line,) = lines[request_id]  # once: the answer that came later wrote none
        assert (line["logger"], line["status"], line["level"]) == ("uvicorn.access", 499, "INFO"), line
        assert line["error"] == "client closed the request" and 0 < line["duration_ms"] < 500, line
    for request_id in ("late-direct", "late-asgi"):
        (line,) = lines[request_id]
        assert (line["status"], line["level"]) == (504, "WARNING"), line
    (refusal,) = lines["refused-1"]
    assert (refusal["status"], refusal["level"]) == (400, "INFO") and "Host" in refusal["error"], refusal
    assert "Invalid HTTP request received." not in log.read_text(encoding="utf-8")


def test_with_the_access_log_off_failures_still_have_their_lines(tmp_path: Path) -> None:
    root = repository(tmp_path / "models", SLOW_BATCHES)
    log = tmp_path / "log"
    with (
        running_server(root, log, ctr_model="esmm", log_format="json", access_log="false") as (url, _),
        httpx.Client(base_url=url, timeout=5) as http,
    ):
        leave_while_pending(http, post(INFER_PATH, INFER, "gone-asgi"), 1)
        fail_late(url)
        with httpx.Client(base_url=url, timeout=10) as client:
            assert (
                client.post("/v1/score", content=SCORE[:2000], headers={"x-request-id": "mistake"}).status_code == 415
            )
            assert client.get("/v1/models", headers={"x-request-id": "fine"}).status_code == 200
            assert client.post("/v1/score", content=SCORE, headers=JSON | {"x-request-id": "scored"}).status_code == 200
        for n in range(REFUSALS):  # bad bytes in a loop: refused, each logged (or counted) once
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:
                raw.sendall(f"GET /v1/models HTTP/1.1\r\nx-request-id: bad-{n}\r\n\r\n".encode())
                assert raw.recv(65536).startswith(b"HTTP/1.1 400 ")
        eventually(lambda: sum(refusals_said(log)) == REFUSALS, 5, lambda: f"the refusals said: {refusals_said(log)}")
    said = {request_id: [(line["status"], line["level"]) for line in lines] for request_id, lines in by_id(log).items()}
    lines, held = refusals_said(log)
    assert held and lines <= 2 * LINES_PER_S  # the line of each, or a count
    assert all(said.pop(f"bad-{n}", [(400, "INFO")]) == [(400, "INFO")] for n in range(REFUSALS))
    # the answers that succeeded, and a client's mistake (415), have none
    assert said == {"gone-asgi": [(499, "INFO")], "late-direct": [(504, "WARNING")], "late-asgi": [(504, "WARNING")]}
    assert by_id(log)["late-asgi"][0]["infer_id"] == "bid-9"  # the body's id, as with the access log on


def test_under_a_log_level_above_info_failures_still_have_their_lines(tmp_path: Path) -> None:
    """With ``CTR_LOG_LEVEL=WARNING`` (the access log on) uvicorn's INFO access line of an ASGI route was dropped
    before the access filter could raise a 5xx's to WARNING: that 504 had no line, the direct route's had one.
    Now the failures' lines are written as with the access log off: both 504s, at WARNING."""
    root = repository(tmp_path / "models", SLOW_BATCHES)
    log = tmp_path / "log"
    with running_server(root, log, ctr_model="esmm", log_format="json", log_level="WARNING") as (url, _):
        fail_late(url)
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/v1/models", headers={"x-request-id": "fine"}).status_code == 200
    said = {request_id: [(line["status"], line["level"]) for line in lines] for request_id, lines in by_id(log).items()}
    assert said == {"late-direct": [(504, "WARNING")], "late-asgi": [(504, "WARNING")]}
