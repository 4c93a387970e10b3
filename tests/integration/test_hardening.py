"""The service hardened, tried on a real uvicorn on loopback (docs/serving.md, "Hardening").

Each test runs the function `ctr bench harden` runs (clients/bench/harden.py) at a small scale and
bounded in time, and asserts on what clients saw: statuses and counts, never a duration measured
against a speed target (the bounds below are generous time-outs, not performance figures).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clients.bench import harden as bench
from common.repository import MODEL_FILE, version_dir
from tests.support.harden_requests import AUTH, BODY, PAYLOAD, TOKEN
from tests.support.metrics import gauge, responses
from tests.support.server import port_of, running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.tiny_repository import repository

# Past this much of a CPU given to other guests during the pauses case, the host paused the server too:
# a 503 then is not the test's 60 ms pauses alone (a clean-clone run on 2026-12-03 drew 9 of 6,000 while the
# benchmarks run just before it recorded 41-92 %)
HOST_STEAL_LIMIT_PCT = 10.0


def closed_loop_rate(url: str, payload: bytes) -> float:
    """Requests/s one client gets sending each as soon as the last is answered, for a second."""
    with httpx.Client(timeout=10) as client:
        start, done = time.monotonic(), 0
        while time.monotonic() - start < 1.0:
            reply = client.post(f"{url}/v1/score", content=payload, headers={"content-type": "application/json"})
            assert reply.status_code == 200
            done += 1
    return done / (time.monotonic() - start)


def responses_503(url: str) -> int:
    return responses(url, 503)


@pytest.mark.serial
def test_overload_is_shed_with_fast_503s_and_recovers(tmp_path: Path) -> None:
    """Twice the sustainable rate, with the model the bottleneck (one item per run): the refusals are
    503s (at the door while a queue stands, or by the batcher's time-based admission), every one counted
    in the metrics, no request is left without an answer, and at a quarter of the rate every request is
    answered 200 again (`ctr bench harden` measures half the rate, on pinned CPUs)."""
    root = repository(tmp_path / "models", "max_batch_size = 1\nmax_queue_delay_us = 0")
    body = {"context": {"user_id": "u"}, "candidates": [{"ad_id": f"a{i}", "ad_price": 1.0} for i in range(50)]}
    payload = httpx.Request("POST", "http://x", json=body).content
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", log_level="WARNING") as (url, _):
        # what 4 clients get, the better of two seconds: the model kept busy, too few requests in hand
        # for the door (one client's closed loop measures its own round trips too: a slow second of it
        # once gave 67 req/s, and all 402 requests of "twice" that were answered 200)
        rate = max(bench.closed_loop_rps(port_of(url), payload, 1.0, connections=4) for _ in range(2))
        refused_before = responses_503(url)
        high = bench.offer(port_of(url), payload, 2 * rate, 3.0, connections=32)
        statuses = Counter({int(k) if k.isdigit() else k: v for k, v in high["statuses"].items()})
        assert "error" not in statuses and set(statuses) <= {200, 503, 504}, high
        assert statuses[503] > 0 and statuses[503] >= 9 * statuses[504], high
        assert responses_503(url) - refused_before == statuses[503]
        time.sleep(2.0)
        for _ in range(5):  # traffic resumes: the batcher's rate is measured afresh on a calm server
            httpx.post(f"{url}/v1/score", content=payload, headers={"content-type": "application/json"}, timeout=10)
        low = bench.offer(port_of(url), payload, rate / 4, 2.0, connections=8)  # a quarter: a shared machine
        assert low["statuses"] == {"200": sum(low["statuses"].values())}, low


@pytest.mark.serial
def test_pauses_of_the_server_under_a_light_load_are_no_overload(tmp_path: Path) -> None:
    """The process paused for 60 ms at a time (a host's steal, a long collection) under at most a third of its
    closed-loop rate: requests pile up for a moment, then drain at once. A stall, not a standing queue:
    every request is answered 200. (With the door's interval at the former 20 ms, this drew 13-35 503s
    in each of three runs on the development VM, where the rate was 1,500 req/s: docs/serving.md.)"""
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", log_level="WARNING") as (
        url,
        process,
    ):
        # at 1,500 req/s each pause leaves ~90 requests in hand, well over the door's 16
        rate = min(1500.0, bench.closed_loop_rps(port_of(url), PAYLOAD, 2.0) / 3)
        # the closed-loop probe saturates the server: on a host shared with other jobs the door refused some
        # of its requests (252 in one run), counted before the load this test is about
        refused_before = responses_503(url)
        seen = bench.paused_load(port_of(url), process.pid, PAYLOAD, rate, 4.0, pause_ms=60, every_s=0.4)
        assert seen["pauses"] >= 5, seen
        if seen["statuses"].get("503") and (seen["host_steal_pct"] or 0.0) > HOST_STEAL_LIMIT_PCT:
            pytest.skip(f"the host stole {seen['host_steal_pct']} % of a CPU meanwhile: pauses beyond the test's own")
        assert seen["statuses"] == {"200": sum(seen["statuses"].values())}, seen
        assert responses_503(url) - refused_before == 0


def test_a_request_refused_at_the_door_leaves_its_keep_alive_connection_usable(tmp_path: Path) -> None:
    """While a queue stands (a 5 ms target here, model-bound server), the protocol answers inference
    requests 503 from their headers, with Retry-After and a JSON error, drops their bodies, and the same
    keep-alive connection then carries a request answered 200; health is never refused.

    The connection carries its next request as soon as the refusal is read: left idle until the load ended,
    it was closed by the server's keep-alive time-out (5 s and a second's grace) on a loaded machine, where
    the rest of the load took longer than that, and the reuse met a broken pipe."""
    root = repository(tmp_path / "models", "max_batch_size = 1\nmax_queue_delay_us = 0")
    body = {"context": {"user_id": "u"}, "candidates": [{"ad_id": f"a{i}", "ad_price": 1.0} for i in range(50)]}
    payload = httpx.Request("POST", "http://x", json=body).content
    headers = {"content-type": "application/json"}
    settings = {"ctr_model": "esmm", "access_log": "false", "log_level": "WARNING", "shed_wait_ms": "5"}
    with running_server(root, tmp_path / "log", **settings) as (url, _):
        rate = closed_loop_rate(url, payload)  # offered far more: all 64 connections busy, 64 requests in hand
        load = threading.Thread(target=bench.offer, args=(port_of(url), payload, 20 * rate + 200, 4.0, 64))
        load.start()
        connection = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=10)

        def score() -> tuple[int, dict[str, str], dict]:
            connection.request("POST", "/v1/score", body=payload, headers=headers)
            reply = connection.getresponse()
            return reply.status, dict(reply.getheaders()), json.loads(reply.read())

        door: tuple[int, dict[str, str], dict] | None = None
        health, after_door = [], []
        try:
            while load.is_alive() and door is None:
                health.append(httpx.get(f"{url}/v2/health/live", timeout=10).status_code)
                answer = score()
                if answer[0] == 503 and "wait too long to be read" in answer[2]["error"]:
                    door = answer
            # at once the next request, and the next while the load refuses them too
            while door is not None and load.is_alive() and not any(status == 200 for status, _, _ in after_door):
                after_door.append(score())
        finally:
            load.join()
        assert door is not None, "no request was refused at the door with 64 requests in hand"
        assert door[1].get("retry-after") == "1" and door[2]["field"] is None
        assert door[1].get("keep-alive") == "timeout=5"  # the hint, as on the application's responses
        assert set(health) == {200}
        if not any(status == 200 for status, _, _ in after_door):  # the load is over: idle since it ended
            after_door.append(score())
        # answers to requests read whole (a body left unread would be parsed as the next request: a 400)
        assert {status for status, _, _ in after_door} <= {200, 503, 504}, after_door
        assert after_door[-1][0] == 200 and len(after_door[-1][2]["scores"]) == 50, after_door
        connection.close()
        shed = httpx.get(f"{url}/metrics").text.split("\nctr_http_requests_shed_total ", 1)[1].split("\n", 1)[0]
        assert 0 < int(shed) <= responses_503(url)  # counted apart from the other 503s
    assert "refused at the door with 503 since the last such line" in (tmp_path / "log").read_text()  # and said


def test_sigterm_under_keep_alive_load_leaves_no_request_without_a_response(tmp_path: Path) -> None:
    root = repository(tmp_path / "models", "max_queue_delay_us = 2000")
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", drain_idle_s="1") as (url, p):
        result = bench.drain(p.pid, port_of(url), PAYLOAD, clients=8, load_s=1.0, timeout_s=30)
    assert result["no_response"] == 0, result
    assert result["exited"] and result["outcomes"].get("200", 0) > 10, result
    assert set(result["outcomes"]) <= {"200", "unsent"}, result


def test_slow_clients_are_cut_off_and_health_still_answers(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    settings = {"header_timeout_s": "1", "body_timeout_s": "1", "access_log": "false"}
    with running_server(root, tmp_path / "log", ctr_model="esmm", **settings) as (url, _):
        result = bench.slow_clients(url, port_of(url), connections=200, watch_s=15.0)
        assert result["closed_by_server"] == 200, result
        assert result["health_probes"] > 0, result
        # a body that stalls half-way (its first chunk sent, the rest never) is answered 408 once the body
        # time-out passes, and the connection closed: read until then
        # (on /v1/score's own handler and on a FastAPI route: each counts its answers its own way)
        for path in (b"/v1/score", b"/v2/models/esmm/infer"):
            counted = {code: responses(url, code) for code in (408, 499, 500)}
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:
                raw.sendall(
                    b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" % path
                    + b'transfer-encoding: chunked\r\n\r\n10\r\n{"candidates": [\r\n'
                )
                head, _, body = b"".join(iter(lambda: raw.recv(65536), b"")).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 ") and "body" in json.loads(body)["error"], head + body
            time.sleep(0.5)  # the application's own answer to the closed connection, had it been counted
            # the protocol's 408 is counted as the application's answers are, and once: the application, which
            # held the chunked request, answered 499 after it, to nobody, and that was counted too
            assert {code: responses(url, code) - n for code, n in counted.items()} == {408: 1, 499: 0, 500: 0}, path
        with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:
            raw.sendall(b"GARBAGE\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 400")
        assert responses(url, 400) == 1


def test_metrics_show_the_connections_and_the_large_bodies_held(tmp_path: Path) -> None:
    """Connections trickling large bodies can hold the whole large-body budget until the body time-out
    (docs/serving.md); nothing in /metrics showed it (a soak test): now the open connections, the budget's
    bytes in use and the bodies waiting for it are gauges, back to nothing once the clients leave."""
    root = repository(tmp_path / "models")
    settings = {"max_body_bytes": "1048576", "body_bytes_in_flight": "1048576", "access_log": "false"}
    with running_server(root, tmp_path / "log", ctr_model="esmm", **settings) as (url, _):
        idle = [socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) for _ in range(5)]
        trickling = [socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) for _ in range(2)]
        for raw in trickling:  # each declares 1,000,000 bytes and sends one: the second waits for the first's share
            raw.sendall(
                b"POST /v1/score HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: 1000000\r\n\r\n{"
            )
        time.sleep(0.5)
        assert gauge(url, "ctr_http_open_connections") >= 7
        assert gauge(url, "ctr_http_body_bytes_in_flight") == 1_000_000 and gauge(url, "ctr_http_bodies_waiting") == 1
        for raw in idle + trickling:
            raw.close()
        time.sleep(0.5)
        assert gauge(url, "ctr_http_body_bytes_in_flight") == 0 and gauge(url, "ctr_http_bodies_waiting") == 0
        assert gauge(url, "ctr_http_open_connections") <= 1  # the one asking


def test_a_client_leaving_mid_body_is_counted_499_not_500(tmp_path: Path) -> None:
    """Starlette's ClientDisconnect from ``request.body()`` (the V2 routes) reached the catch-all: logged with
    its traceback and counted as a 500, on the series a 5xx alert reads."""
    root = repository(tmp_path / "models")
    log = tmp_path / "log"
    with running_server(root, log, ctr_model="esmm", access_log="false") as (url, _):
        counted = {code: responses(url, code) for code in (499, 500)}
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:
                head = "POST /v2/models/esmm/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                raw.sendall(f"{head}content-length: 100\r\n\r\n".encode() + b'{"in')
                time.sleep(0.2)
        time.sleep(0.5)
        assert {code: responses(url, code) - n for code, n in counted.items()} == {499: 3, 500: 0}
    assert "unhandled error" not in log.read_text()


def test_headers_past_their_bounds_are_refused_431_and_memory_stays_put(tmp_path: Path) -> None:
    """uvicorn keeps every header it parses in a list: 40 MB of headers on one connection were answered
    200 after the service's memory had grown by 600 MB (a security audit's finding). Now the request line
    and headers are bounded in bytes and in fields; a request at the bounds' edge is still answered."""
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false") as (url, process):

        def answer(head: bytes, before: bytes = b"") -> bytes:
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as raw:
                raw.sendall(before + b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n")
                try:
                    for start in range(0, len(head), 65536):
                        raw.sendall(head[start : start + 65536])
                    raw.sendall(b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused and closed before the rest was sent
                time.sleep(0.2)
                return raw.recv(65536)

        resident_before = resident_kib(process.pid)
        many_bytes = answer(b"x-filler: " + b"a" * 20_000_000 + b"\r\n")
        assert many_bytes.startswith(b"HTTP/1.1 431 "), many_bytes[:200]
        assert b"exceed 65536 bytes" in many_bytes
        pipelined = answer(
            b"x-filler: " + b"a" * 20_000_000 + b"\r\n", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n"
        )
        # behind a request in hand: its own answer first (a 431 written at once was read as that answer), then
        # the 431 (it got none when the bound was passed before the first was answered)
        assert pipelined.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 431 " in pipelined, pipelined
        many_fields = answer(b"".join(b"x-%d: 1\r\n" % i for i in range(100)))  # and host: 101
        assert many_fields.startswith(b"HTTP/1.1 431 ") and b"more than 100 header fields" in many_fields
        assert resident_kib(process.pid) - resident_before < 50_000  # not the 20 MB sent, many times over
        assert answer(b"".join(b"x-%d: 1\r\n" % i for i in range(99))).startswith(b"HTTP/1.1 200 ")  # 100
        assert responses(url, 431) == 3
        # fields are refused as they arrive: 100 connections of 60 KB of 4-byte fields, left open, held 1.4 MB
        # of Python objects each until the header time-out when the fields were counted once complete
        resident_before = resident_kib(process.pid)
        connections = [socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) for _ in range(100)]
        try:
            for raw in connections:
                raw.sendall(b"GET /v2/health/live HTTP/1.1\r\n" + b"h1:\r\n" * 12_000)
            assert all(raw.recv(200).startswith(b"HTTP/1.1 431 ") for raw in connections)
            assert resident_kib(process.pid) - resident_before < 20_000
        finally:
            for raw in connections:
                raw.close()


def resident_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def test_many_large_invalid_bodies_are_all_refused_with_4xx(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false") as (url, process):
        result = bench.large_bodies(url, process.pid, "esmm", bodies=12, body_bytes=2_000_000)
    assert set(result["statuses"]) == {"413"} and result["statuses"]["413"] == 12, result  # refused unread


def test_a_refused_version_is_named_by_the_load_and_listed_by_the_index(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", admin_token=TOKEN) as (url, _):
        version = publish_tiny_esmm(root, seed=3)
        model = version_dir(root, "esmm", version) / MODEL_FILE
        model.write_bytes(model.read_bytes()[:-40])
        reply = httpx.post(f"{url}/v2/repository/models/esmm/load", headers=AUTH, timeout=30)
        assert reply.status_code == 409, reply.text
        assert f"version {version}" in reply.json()["error"] and "sha256" in reply.json()["error"]
        index = httpx.post(f"{url}/v2/repository/index", headers=AUTH).json()
        refused = [e for e in index if e.get("version") == str(version)]
        assert refused and refused[0]["state"] == "UNAVAILABLE" and "sha256" in refused[0]["reason"], index
        assert {"name": "esmm", "version": "1", "state": "READY", "reason": ""} in index
        assert httpx.post(f"{url}/v1/score", json=BODY).json()["models"]["ctr"]["version"] == 1


@pytest.fixture(scope="module")
def admin_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One service with its admin routes for the cases that only send it requests it refuses, changing
    nothing: a start of its own for each case cost seconds."""
    root = repository(tmp_path_factory.mktemp("models"))
    with running_server(root, tmp_path_factory.mktemp("log") / "log", ctr_model="esmm", admin_token=TOKEN) as (url, _):
        yield url


@pytest.mark.parametrize("name", ["esmm%0A", "esmm%0D", "..", "a" * 65])
def test_model_names_are_matched_whole(admin_service: str, name: str) -> None:
    reply = httpx.post(f"{admin_service}/v2/repository/models/{name}/load", headers=AUTH)
    assert reply.status_code in (400, 404), reply.text


def test_a_full_queue_is_counted_on_the_model_whose_queue_was_full(tmp_path: Path) -> None:
    """ctr and ctcvr filled by two models; the ctcvr model's queue is tiny: its refusals are counted
    on it as queue_full (or overloaded), and the ctr model counts no cancellation for them."""
    root = repository(tmp_path / "models")
    publish_tiny_esmm(root, name="esmm_b")
    (root / "esmm_b" / "config.toml").write_text(
        "[serving]\nmax_batch_size = 10\nmax_queue_items = 10\nmax_queue_delay_us = 200000\n"
    )
    # 6-candidate requests: one waits in esmm_b's queue for a fuller batch (up to 200 ms), and a second
    # one cannot join it (6 + 6 > 10), so refusals do not depend on how fast this machine runs the model.
    six = httpx.Request("POST", "http://x", json=BODY | {"candidates": BODY["candidates"][:6]}).content
    with running_server(root, tmp_path / "log", ctr_model="esmm", ctcvr_model="esmm_b", access_log="false") as (
        url,
        _,
    ):
        result = bench.offer(port_of(url), six, 200, 1.0, connections=16)
        assert result["statuses"].get("503", 0) > 0, result
        metrics = httpx.get(f"{url}/metrics").text
    refusals = [line for line in metrics.splitlines() if 'model="esmm_b"' in line and "failure_total" in line]
    assert any('reason="queue_full"' in line or 'reason="overloaded"' in line for line in refusals), metrics
    cancelled = 'ctr_inference_request_failure_total{model="esmm",version="1",reason="cancelled"} 0'
    assert cancelled in metrics.splitlines()  # every reason is listed, from 0


@pytest.mark.serial
def test_an_idle_keep_alive_connection_is_closed_without_a_word(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", keep_alive_s="0.5", access_log="false") as (url, _):
        connection = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=5)
        for _ in range(2):  # a request on a fresh connection, then one on the kept-alive one
            connection.request("GET", "/v2/health/live")
            response = connection.getresponse()
            assert (response.status, json.loads(response.read())) == (200, {"live": True})
        started = time.monotonic()
        assert connection.sock.recv(1024) == b""  # closed by the server, no 408 or anything else written
        assert 0.3 < time.monotonic() - started < 3.0
        connection.close()


@pytest.mark.serial
def test_responses_tell_the_keep_alive_time_and_the_server_closes_a_grace_later(tmp_path: Path) -> None:
    """A client that honours `Keep-Alive: timeout=1` closes its idle connection before the server does: a
    request sent 1.3 s after a response (past the advertised second, within the 1-s grace) is answered,
    and the server closes the connection, without a word, only at the end of the grace."""
    root = repository(tmp_path / "models")
    settings = {"keep_alive_s": "1", "keep_alive_grace_s": "1", "access_log": "false"}
    with running_server(root, tmp_path / "log", ctr_model="esmm", **settings) as (url, _):
        connection = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=5)
        connection.request("GET", "/v2/health/live")
        response = connection.getresponse()
        response.read()
        assert response.headers["keep-alive"] == "timeout=1"
        time.sleep(1.3)
        connection.request("POST", "/v1/score", body=PAYLOAD, headers={"content-type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200 and response.headers["keep-alive"] == "timeout=1"
        response.read()
        started = time.monotonic()
        assert connection.sock.recv(1024) == b""
        assert 1.5 < time.monotonic() - started < 4.0
        connection.close()


@pytest.mark.serial
def test_the_sustainable_ladder_falls_from_a_rate_the_server_does_not_sustain(tmp_path: Path) -> None:
    """`ctr bench harden`'s ladder starts below the closed-loop rate; where even that start is refused
    or lost, it steps down until a rate is answered all 200, instead of giving up with no rate."""
    root = repository(tmp_path / "models", "max_batch_size = 1\nmax_queue_delay_us = 0")
    body = {"context": {"user_id": "u"}, "candidates": [{"ad_id": f"a{i}", "ad_price": 1.0} for i in range(50)]}
    payload = httpx.Request("POST", "http://x", json=body).content
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", log_level="WARNING") as (url, _):
        start = 16 * closed_loop_rate(url, payload)
        best, steps = bench.sustainable(port_of(url), payload, start, 0.5, growth=4.0)
    assert steps[0]["statuses"] != {"200": sum(steps[0]["statuses"].values())}, steps
    assert best < start and steps[-1]["offered_rps"] == round(best, 1), steps
    assert steps[-1]["statuses"] == {"200": sum(steps[-1]["statuses"].values())}, steps
