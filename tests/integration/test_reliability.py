"""Reliability on a real uvicorn on loopback: schema fuzzing, reload under traffic with a corrupt
version, a storm of client disconnects, overload at twice capacity, and a graceful SIGTERM drain."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from pydantic import TypeAdapter

from clients.bench.loadgen import request_bytes, run_load
from clients.service_process import free_port
from common.repository import MODEL_FILE, version_dir
from service.app import ROUTERS
from service.routes import admin
from tests.support.openapi import resolved
from tests.support.score_traffic import BODY, score_continuously
from tests.support.server import port_of, running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.tiny_repository import repository
from tests.support.v2_bodies import infer_body
from tests.support.wait import eventually

TOKEN = "reliability-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = repository(tmp_path_factory.mktemp("models"), "max_batch_size = 64\nmax_queue_delay_us = 2000")
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(root, log, ctr_model="esmm", admin_token=TOKEN, access_log="false") as (url, _):
        yield url, root


def response_models() -> dict[tuple[str, str], TypeAdapter]:
    """(method, path template) -> a validator of the route's documented 200 body."""
    models = {}
    for router in (*ROUTERS, admin.router):
        for route in router.routes:
            model = route.responses.get(200, {}).get("model") if isinstance(route, APIRoute) else None
            if model is not None:
                models.update({(method, route.path): TypeAdapter(model) for method in route.methods})
    return models


def test_no_server_errors_anywhere_in_the_schema(service: tuple[str, Path]) -> None:
    """schemathesis cases for every operation of the OpenAPI document: never a 5xx but 503, and every
    2xx body is one its documented response model accepts (the handlers render by hand)."""
    schema = schemathesis.openapi.from_url(f"{service[0]}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    models = response_models()
    checked: Counter = Counter()

    # one keep-alive session for every case (each call opened a session and a connection of its own): what is
    # checked is each answer, not how its connection was made
    with requests.Session() as session:
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=40, suppress_health_check=list(HealthCheck), database=None)
            def no_server_error(case: schemathesis.Case) -> None:
                response = case.call(session=session, timeout=10)
                assert response.status_code < 500 or response.status_code == 503, (case.path, case.body, response.text)
                model = models.get((case.operation.method.upper(), case.operation.path))
                if response.status_code == 200 and model is not None:
                    model.validate_json(response.content)
                    checked[case.operation.path] += 1

            no_server_error()
    assert {"/v1/models", "/v2/health/live", "/v2"} <= set(checked), checked


def test_documented_examples_are_answered_with_the_documented_shape(tmp_path: Path) -> None:
    """Each request body example of the OpenAPI document, posted as it stands, is answered 200 by models
    with the default served models' features (the world simulator's) with a body its response model
    accepts (the V2 infer body schema resolves too)."""
    from common.features import NumericStats
    from training.world.features import feature_spec

    spec = feature_spec()
    root = tmp_path / "models"
    publish_tiny_esmm(root, spec=spec.with_stats({f.name: NumericStats(mean=1.0, std=2.0) for f in spec.numeric}))
    with running_server(root, tmp_path / "log", ctr_model="esmm", admin_token=TOKEN) as (url, _):
        check_documented_examples(url)


def check_documented_examples(url: str) -> None:
    document = httpx.get(f"{url}/openapi.json").json()
    models = response_models()
    posted = []
    for path, operations in document["paths"].items():
        body = operations.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if body is None or "example" not in body or path.startswith("/v1/similarity"):
            continue  # /v1/similarity: tests/service/test_similarity.py (this repository has no ESAM)
        assert "$ref" not in str(resolved(document, body["schema"])), f"{path}: the schema's references do not resolve"
        concrete = path.replace("{name}", "esmm").replace("{version}", "1")
        response = httpx.post(f"{url}{concrete}", json=body["example"], timeout=10)
        assert response.status_code == 200, (path, response.text)
        models[("POST", path)].validate_json(response.content)
        posted.append(path)
    assert {"/v1/score", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"} <= set(posted)
    for path in (
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready",
    ):
        response = httpx.get(url + path.replace("{name}", "esmm").replace("{version}", "1"))
        assert response.status_code == 200, (path, response.text)
        models[("GET", path)].validate_json(response.content)
    response = httpx.post(f"{url}/v2/repository/index", headers=AUTH)
    models[("POST", "/v2/repository/index")].validate_json(response.content)


def test_reload_under_traffic_refuses_a_corrupt_version_with_no_failed_request(service: tuple[str, Path]) -> None:
    url, root = service
    stop = threading.Event()
    with ThreadPoolExecutor(4) as pool:
        traffic = [pool.submit(score_continuously, url, stop) for _ in range(2)]
        time.sleep(0.2)
        version = publish_tiny_esmm(root, seed=7)
        model = version_dir(root, "esmm", version) / MODEL_FILE
        model.write_bytes(model.read_bytes()[:-40])  # truncated: the checksum no longer matches
        load_url = f"{url}/v2/repository/models/esmm/load"
        loads = [pool.submit(httpx.post, load_url, headers=AUTH, timeout=30) for _ in range(2)]
        for load in loads:  # refused, named, and version 1 keeps serving
            assert load.result().status_code == 409 and f"version {version} refused" in load.result().json()["error"]
            assert "serving versions [1]" in load.result().json()["error"]
        good = publish_tiny_esmm(root, seed=8)
        reply = httpx.post(f"{url}/v2/repository/models/esmm/load", headers=AUTH, timeout=30)
        assert reply.json()["versions"] == [good]
        time.sleep(0.2)
        stop.set()
        statuses = sum((t.result() for t in traffic), Counter())
    assert set(statuses) == {200} and statuses[200] > 10
    assert httpx.post(f"{url}/v1/score", json=BODY).json()["models"]["ctr"]["version"] == good


def test_a_storm_of_disconnects_leaves_the_batcher_answering(tmp_path: Path) -> None:
    root = repository(tmp_path / "models", "max_batch_size = 1024\nmax_queue_delay_us = 300000")  # 0.3 s fill wait
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false") as (url, _):
        port = port_of(url)
        raw = request_bytes("127.0.0.1", "/v1/score", httpx.Request("POST", url, json=BODY).content)
        sockets = []
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(raw)
            sockets.append(sock)
        time.sleep(0.1)
        for sock in sockets:
            sock.close()
        time.sleep(0.5)
        for _ in range(5):
            assert httpx.post(f"{url}/v1/score", json=BODY, timeout=5).status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        cancelled = re.search(r'failure_total\{model="esmm",version="1",reason="cancelled"\} (\d+)', metrics)
        assert cancelled is not None and int(cancelled.group(1)) > 0  # every reason is listed, from 0
        assert 'ctr_inference_pending_request_count{model="esmm",version="1"} 0' in metrics


@pytest.mark.serial
def test_overload_at_twice_capacity_gets_fast_503s_then_recovers(tmp_path: Path) -> None:
    # one item per run: capacity is low and easy to exceed
    root = repository(tmp_path / "models", "max_batch_size = 1\nmax_queue_delay_us = 0\nmax_queue_items = 500")
    body = {"context": {"user_id": "u"}, "candidates": [{"ad_id": f"a{i}", "ad_price": 1.0} for i in range(50)]}
    payload = httpx.Request("POST", "http://x", json=body).content
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", log_level="WARNING") as (url, _):
        port = port_of(url)
        with httpx.Client(timeout=10) as client:  # capacity: closed loop, one request at a time
            start, done = time.monotonic(), 0
            while time.monotonic() - start < 1.0:
                assert (
                    client.post(
                        f"{url}/v1/score", content=payload, headers={"content-type": "application/json"}
                    ).status_code
                    == 200
                )
                done += 1
        capacity = done / (time.monotonic() - start)
        result = asyncio.run(run_load("127.0.0.1", port, "/v1/score", [payload], 2 * capacity, 2.0, connections=32))
        assert set(result.statuses) <= {200, 503, 504}, result.statuses  # 504: a deadline lost to a busy machine
        assert result.statuses[503] >= 9 * result.statuses[504] and result.statuses[503] > 0 and result.ok > 0
        recovered = asyncio.run(run_load("127.0.0.1", port, "/v1/score", [payload], capacity / 4, 1.0, connections=4))
        assert recovered.statuses == Counter({200: recovered.sent}), recovered.statuses


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_drains_queued_requests_before_exit(tmp_path: Path, stop: signal.Signals) -> None:
    """A terminal's SIGHUP killed a process of one at once (status 129, no line logged), its requests in
    flight unanswered, where several workers drained on it: now it drains as SIGTERM does."""
    root = repository(tmp_path / "models", "max_batch_size = 1024\nmax_queue_delay_us = 3000000")
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", request_timeout_ms="8000") as (
        url,
        process,
    ):
        with ThreadPoolExecutor(10) as pool:
            replies = [pool.submit(httpx.post, f"{url}/v1/score", json=BODY, timeout=10) for _ in range(10)]
            pending = 'ctr_inference_pending_request_count{model="esmm",version="1"} 10'
            # all ten wait for their batch to fill
            eventually(lambda: pending in httpx.get(f"{url}/metrics").text, 10, "ten requests pending")
            process.send_signal(stop)
            statuses = [r.result().status_code for r in replies]
        # uvicorn re-raises the signal after its graceful shutdown, so the status says which
        assert process.wait(timeout=20) in (0, -stop)
    assert statuses == [200] * 10
    assert "stopped: every queue drained" in (tmp_path / "log").read_text()


def test_a_service_started_ignoring_hang_ups_goes_on_ignoring_them(tmp_path: Path) -> None:
    """``nohup ctr serve``: the hang-up the operator asked to be ignored does not stop it."""
    import shutil
    import sys

    nohup = [shutil.which("nohup") or "nohup", sys.executable, "-m", "service"]
    with running_server(repository(tmp_path / "models"), tmp_path / "log", nohup, ctr_model="esmm") as (url, process):
        process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert process.poll() is None and httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_a_sub_second_drain_timeout_still_answers_the_request_in_flight(tmp_path: Path) -> None:
    """``CTR_DRAIN_TIMEOUT_S=0.9`` is 0.9 s, not int(0.9) = 0 s: a V2 infer request (an ASGI task, which
    uvicorn cancels when the drain time runs out) waiting 0.5 s for its batch to fill when SIGTERM arrives
    is answered; it was cancelled at once, a 500."""
    root = repository(tmp_path / "models", "max_batch_size = 1024\nmax_queue_delay_us = 500000")
    body = infer_body([[0, 50, 74]], [[0.0, 0.0]])
    with running_server(root, tmp_path / "log", ctr_model="esmm", access_log="false", drain_timeout_s="0.9") as (
        url,
        process,
    ):
        with ThreadPoolExecutor(1) as pool:
            reply = pool.submit(httpx.post, f"{url}/v2/models/esmm/infer", json=body, timeout=10)
            pending = 'ctr_inference_pending_request_count{model="esmm",version="1"} 1'
            # it waits for its batch to fill
            eventually(lambda: pending in httpx.get(f"{url}/metrics").text, 10, "the request pending")
            assert not reply.done()
            process.send_signal(signal.SIGTERM)
            status = reply.result().status_code
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert status == 200, (tmp_path / "log").read_text()


def test_readiness_says_503_draining_once_sigterm_arrives(tmp_path: Path) -> None:
    """A load balancer probing over a kept-alive connection during the drain: it read 200 until the process
    exited, and kept sending traffic there."""
    try:
        import tritonclient.grpc as grpcclient
    except ImportError:  # the HTTP probe is checked all the same
        grpcclient = None
    root = repository(tmp_path / "models", "")
    grpc_port = free_port()
    settings = {"ctr_model": "esmm", "drain_idle_s": "5"} | ({"grpc_port": str(grpc_port)} if grpcclient else {})
    with running_server(root, tmp_path / "log", **settings) as (url, process):
        grpc_client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") if grpcclient else None
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/v2/health/ready").status_code == 200  # the connection is kept alive
            assert grpc_client is None or grpc_client.is_server_ready()
            process.send_signal(signal.SIGTERM)
            probes = []  # on the kept-alive connection: the one that reads 503 may be the last it carries

            def not_ready() -> bool:  # the signal is handled on the loop
                probes.append(client.get("/v2/health/ready"))
                return probes[-1].status_code != 200

            eventually(not_ready, 5, "readiness still 200 after SIGTERM")
            probe = probes[-1]
            assert probe.status_code == 503 and probe.json() == {"ready": False, "draining": True}
            assert grpc_client is None or not grpc_client.is_server_ready()  # gRPC says so too (it said ready)
        if grpc_client is not None:
            grpc_client.close()
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)


def test_structured_logs(tmp_path: Path) -> None:
    import json

    root = repository(tmp_path / "models", "")
    with running_server(root, tmp_path / "log", ctr_model="esmm", log_format="json") as (url, _):
        for body in (BODY, {}):
            httpx.post(f"{url}/v1/score", json=body)
        httpx.get(f"{url}/v1/models")
    lines = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines() if line.startswith("{")]
    loaded = [line for line in lines if line["message"].startswith("model esmm version 1 loaded")]
    assert loaded and {"ts", "level", "logger", "pid"} <= set(loaded[0])
    access = [(line["method"], line["path"], line["status"]) for line in lines if line["logger"] == "uvicorn.access"]
    assert ("POST", "/v1/score", 200) in access and ("POST", "/v1/score", 422) in access
    assert ("GET", "/v1/models", 200) in access
