"""An access line says how long its request took from its arrival (``duration_ms``): a request that waited
before the batcher saw it, here in a paused process, shows its wait, which the metrics' request durations
(from the model's queue on) do not. An on-call audit paused the server for 0.7 s: curl took 0.69 s, the
access lines said no time at all and the duration histogram's sum grew by 0.026 s for ten requests."""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.access_log import access_lines
from tests.support.harden_requests import PAYLOAD
from tests.support.server import running_server
from tests.support.tiny_repository import repository

JSON = {"content-type": "application/json"}
PAUSE_S = 0.5


def metric_sum(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.mark.serial
def test_an_access_line_says_the_wait_of_a_request_sent_while_the_process_was_paused(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    for log_format in ("json", "text"):
        log = tmp_path / f"log.{log_format}"
        with running_server(root, log, ctr_model="esmm", log_format=log_format) as (url, process):
            with httpx.Client(base_url=url, timeout=10) as client:
                assert client.post("/v1/score", content=PAYLOAD, headers=JSON | {"x-request-id": "calm"}).is_success
            queued_s = metric_sum(url, "ctr_inference_request_duration_seconds_sum")
            calls = [
                ("POST", "/v1/score", "paused-direct"),  # answered by the protocol's direct route
                ("GET", "/v1/models", "paused-asgi"),  # answered by the ASGI application
            ]

            def send(call: tuple[str, str, str]) -> int:
                method, path, request_id = call
                body = PAYLOAD if method == "POST" else None
                headers = JSON | {"x-request-id": request_id}
                return httpx.request(method, f"{url}{path}", content=body, headers=headers, timeout=10).status_code

            os.kill(process.pid, signal.SIGSTOP)
            try:
                with ThreadPoolExecutor(len(calls)) as pool:
                    sent = [pool.submit(send, call) for call in calls]
                    time.sleep(PAUSE_S)  # the requests wait in the kernel for the process
                    os.kill(process.pid, signal.SIGCONT)
                    assert [future.result() for future in sent] == [200, 200]
            finally:
                os.kill(process.pid, signal.SIGCONT)
            queued_s = metric_sum(url, "ctr_inference_request_duration_seconds_sum") - queued_s
        said = access_durations(log.read_text(encoding="utf-8"), log_format)
        assert set(said) == {"calm", "paused-direct", "paused-asgi"}, said
        assert said["calm"] < 1000 * PAUSE_S, said
        assert said["paused-direct"] >= 0.8 * 1000 * PAUSE_S and said["paused-asgi"] >= 0.8 * 1000 * PAUSE_S, said
        assert queued_s < 0.5 * PAUSE_S  # the model's queue saw little of the wait: the access line is where it shows


def access_durations(text: str, log_format: str) -> dict[str, float]:
    """Each access line's duration_ms by its request id (both formats say it in the message; json as a field)."""
    durations = {}
    for request_id, (message, fields) in access_lines(text, log_format).items():
        found = re.search(r" duration_ms=([0-9.]+) request_id=", message)
        assert found, message
        durations[request_id] = float(found[1])
        assert fields.get("duration_ms", durations[request_id]) == durations[request_id], fields
    return durations
