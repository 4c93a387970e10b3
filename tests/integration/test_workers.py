"""Several worker processes on one port (``CTR_WORKERS=2``), on a real uvicorn on loopback (service/workers.py).

Asserted on what clients and the operating system see: answers, summed metrics, processes and exit
statuses; the bounds are generous time-outs, not performance figures.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
import tritonclient.grpc as grpcclient

from clients.bench import harden as bench
from clients.bench.machine import descendants
from clients.service_process import free_port, wait_ready
from tests.support.checkout import ROOT
from tests.support.connection_each import connection_each
from tests.support.encoded_candidates import encoded, grpc_inputs
from tests.support.harden_requests import AUTH, PAYLOAD, TOKEN
from tests.support.score_traffic import score_continuously
from tests.support.server import port_of, running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.tiny_repository import repository
from tests.support.wait import eventually

GRPC_OK = re.compile(r'^ctr_grpc_responses_total\{code="OK"\} (\d+)$', re.M)
SUCCESSES = re.compile(r'^ctr_inference_request_success_total\{model="esmm",version="1"\} (\d+)$', re.M)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """A client sending each request on a connection of its own, so that either worker may answer it."""
    with connection_each() as client:
        yield client


def summed(http: httpx.Client, url: str, counter: re.Pattern[str]) -> list[str]:
    """The values of ``counter`` in one scrape of /metrics, on a connection of its own."""
    return counter.findall(http.get(f"{url}/metrics").text)


def workers_of(pid: int) -> list[int]:
    return descendants(pid)[1:]


def all_gone(process_ids: list[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in process_ids):
            return True
        time.sleep(0.1)
    return False


def test_two_workers_refuse_connections_until_one_is_ready(tmp_path: Path, http: httpx.Client) -> None:
    """The supervisor listened before it forked: a client connecting while the models loaded was accepted
    into the backlog and waited (a health check with a 1 s time-out timed out rather than being refused).
    Now the port is bound, not listening, until a worker's models are loaded, as for one process."""
    root = repository(tmp_path / "models")
    log = tmp_path / "log"
    slow_load = {"warmup_batch_sizes": "[1, 262144]"}  # warm-up at 262,144 rows: the load takes a while
    with running_server(root, log, ready=False, workers="2", **slow_load) as (url, process):

        def forked() -> bool:  # the supervisor has bound the port and forked
            assert process.poll() is None, log.read_text()
            return "workers on 127.0.0.1" in log.read_text()

        eventually(forked, 60, log.read_text, every_s=0.01)
        try:
            with socket.create_connection(("127.0.0.1", port_of(url)), timeout=5):
                connected_during_the_load = True
        except ConnectionRefusedError:
            connected_during_the_load = False
        wait_ready(process, url, log)
        assert not connected_during_the_load
        # the URL to paste, as one process says it (the supervisor said only "2 workers on 127.0.0.1:PORT")
        assert f"bound {url}: serving there once the models are loaded" in log.read_text()
        assert http.get(f"{url}/v2/health/ready").status_code == 200


def test_two_workers_answer_on_one_port_and_every_scrape_sums_both(tmp_path: Path, http: httpx.Client) -> None:
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", workers="2", access_log="false") as (url, process):
        assert len(workers_of(process.pid)) == 2
        sent = 40
        for _ in range(sent):  # a connection each: the workers take them from the shared socket
            reply = http.post(f"{url}/v1/score", content=PAYLOAD, headers={"content-type": "application/json"})
            assert reply.status_code == 200, reply.text
            assert len(reply.json()["scores"]) == 10
        # each worker writes its counters for the other every WRITE_INTERVAL_S: until both have, a scrape may
        # count one worker's; then ten scrapes in a row (a connection each, so either worker) count all
        eventually(lambda: all(summed(http, url, SUCCESSES) == [str(sent)] for _ in range(10)), 30, "summed successes")
        for _ in range(10):  # whichever worker answers
            stats = http.get(f"{url}/v2/models/esmm/versions/1/stats").json()["model_stats"][0]
            assert stats["inference_stats"]["success"]["count"] == sent


def test_an_admin_load_and_unload_reach_every_worker_before_they_answer(tmp_path: Path, http: httpx.Client) -> None:
    """Polling is off: only the fan-out (service/sibling_admin.py) can bring the new version to the worker
    that did not take the admin request. Requests during the reload all succeed."""
    root = repository(tmp_path / "models")
    log = tmp_path / "log"
    with running_server(root, log, ctr_model="esmm", workers="2", admin_token=TOKEN, access_log="false") as (url, _):
        version = publish_tiny_esmm(root, seed=3)
        stop = threading.Event()
        with ThreadPoolExecutor(4) as pool:  # traffic on four kept-alive connections throughout the reload
            traffic = [pool.submit(score_continuously, url, stop) for _ in range(4)]
            time.sleep(0.3)
            reply = http.post(f"{url}/v2/repository/models/esmm/load", headers=AUTH, timeout=60)
            time.sleep(0.3)
            stop.set()
            statuses = sum((t.result() for t in traffic), Counter())
        assert set(statuses) == {200} and statuses[200] > 20, statuses  # no failed request
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"name": "esmm", "versions": [version]}
        assert log.read_text().count(f"model esmm serving versions [{version}]") == 2  # once in each worker
        for _ in range(40):  # a connection each, so both workers answer some
            scored = http.post(f"{url}/v1/score", content=PAYLOAD, headers={"content-type": "application/json"})
            assert scored.json()["models"]["ctr"]["version"] == version, scored.text

        reply = http.post(f"{url}/v2/repository/models/esmm/unload", headers=AUTH, timeout=60)
        assert reply.status_code == 200 and reply.json() == {"name": "esmm", "unloaded": True}, reply.text
        assert log.read_text().count("model esmm unloaded") == 2
        for _ in range(20):
            scored = http.post(f"{url}/v1/score", content=PAYLOAD, headers={"content-type": "application/json"})
            assert scored.status_code == 503, scored.text
        again = http.post(f"{url}/v2/repository/models/esmm/unload", headers=AUTH, timeout=60)
        assert again.status_code == 404 and again.json()["error"] == "model 'esmm' is not loaded", again.text


def test_an_unload_and_a_load_sent_at_once_leave_every_worker_alike(tmp_path: Path, http: httpx.Client) -> None:
    """Sent to two workers at once, each was applied at once everywhere, in one order in one worker and the
    other order in the other: 3 rounds in 12 left one worker serving and the other unloaded, behind two
    200s. Now one operation at a time across the workers: whichever lands last holds in both."""
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", workers="2", admin_token=TOKEN) as (url, _):
        for _ in range(6):
            with ThreadPoolExecutor(2) as pool:  # a connection each: the kernel spreads them over the workers
                calls = [pool.submit(http.post, f"{url}/v2/repository/models/esmm/{op}", headers=AUTH, timeout=60)
                         for op in ("unload", "load")]  # fmt: skip
                assert {call.result().status_code for call in calls} <= {200, 404}, [c.result().text for c in calls]
            statuses = {
                http.post(f"{url}/v1/score", content=PAYLOAD, headers={"content-type": "application/json"}).status_code
                for _ in range(20)  # a connection each, so both workers answer some
            }
            assert len(statuses) == 1, statuses
            assert http.post(f"{url}/v2/repository/models/esmm/load", headers=AUTH, timeout=60).status_code == 200


def test_one_worker_polls_the_repository_and_what_it_finds_loads_in_every_worker(
    tmp_path: Path, http: httpx.Client
) -> None:
    root = repository(tmp_path / "models")
    log = tmp_path / "log"
    settings = {"ctr_model": "esmm", "workers": "2", "poll_interval_s": "0.2", "log_level": "INFO"}
    with running_server(root, log, access_log="false", **settings) as (url, _):
        version = publish_tiny_esmm(root, seed=3)
        serving = f"model esmm serving versions [{version}]"
        eventually(lambda: log.read_text().count(serving) >= 2, 30, lambda: log.read_text()[-2000:])  # each worker
        time.sleep(1.0)  # a few more polls: none finds anything more to load
        assert log.read_text().count(f"poll: model esmm: versions [{version}] wanted") == 1  # one decision, worker 0
        for _ in range(40):  # a connection each, so both workers answer some
            scored = http.post(f"{url}/v1/score", content=PAYLOAD, headers={"content-type": "application/json"})
            assert scored.json()["models"]["ctr"]["version"] == version, scored.text


def test_every_worker_serves_grpc_on_the_one_port(tmp_path: Path, http: httpx.Client) -> None:
    root = repository(tmp_path / "models")
    log, grpc_port = tmp_path / "log", free_port()
    settings = {"ctr_model": "esmm", "workers": "2", "grpc_port": str(grpc_port), "access_log": "false"}
    with running_server(root, log, **settings) as (url, _):
        sent = 30
        for _ in range(sent):  # a channel (connection) each: the kernel spreads them over the workers
            with grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
                result = client.infer("esmm", grpc_inputs(*encoded()), client_timeout=30)
                assert result.as_numpy("pctr").shape == (9,)
        listening = re.findall(
            rf"\[pid (\d+)\] [\w.]+: gRPC \(KServe V2\) listening on 127.0.0.1:{grpc_port}", log.read_text()
        )
        assert len(set(listening)) == 2  # one line from each worker, told apart by its process id
        # as for the HTTP counters: once both workers have written theirs, every scrape counts all
        eventually(lambda: all(summed(http, url, GRPC_OK) == [str(sent)] for _ in range(10)), 30, "summed gRPC OKs")
        for _ in range(10):  # a channel each: gRPC's statistics too are every worker's (they were its own)
            with grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
                (stats,) = client.get_inference_statistics("esmm", as_json=True)["model_stats"]
                assert int(stats["inference_stats"]["success"]["count"]) == sent, stats


def test_sigterm_drains_every_worker_and_the_supervisor_exits_0(tmp_path: Path) -> None:
    root = repository(tmp_path / "models", "max_queue_delay_us = 2000")
    settings = {"ctr_model": "esmm", "access_log": "false", "drain_idle_s": "1", "workers": "2"}
    with running_server(root, tmp_path / "log", **settings) as (url, process):
        workers = workers_of(process.pid)
        result = bench.drain(process.pid, port_of(url), PAYLOAD, clients=8, load_s=1.0, timeout_s=30)
        assert process.wait(timeout=30) == 0
    assert result["no_response"] == 0, result
    assert result["exited"] and result["outcomes"].get("200", 0) > 10, result
    assert all_gone(workers, within_s=5)


def test_a_worker_that_dies_stops_the_others_and_the_supervisor_exits_1(tmp_path: Path) -> None:
    root = repository(tmp_path / "models")
    with running_server(root, tmp_path / "log", ctr_model="esmm", workers="2") as (_, process):
        first, second = workers_of(process.pid)
        os.kill(first, signal.SIGKILL)
        assert process.wait(timeout=30) == 1
        assert all_gone([second], within_s=5)
    assert "exited with -9: stopping" in (tmp_path / "log").read_text()


@contextmanager
def group_of_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> Iterator[tuple[subprocess.Popen, int, Path, Path]]:
    """``python -m service`` with ``workers`` workers in a process group of its own, its TMPDIR a folder of the
    test's; yields (the supervisor, its port, the TMPDIR folder, its log) as soon as it is started, and
    stops the whole group after. The TMPDIR is made in the system's, not in ``tmp_path``: under pytest-xdist
    that is too long a path for the workers' sockets (service/sibling_admin.py ``SOCKET_PATH_MAX``)."""
    from clients.service_process import spawn, stop

    with tempfile.TemporaryDirectory(prefix="tmpdir-") as short:
        temporary = Path(short)
        monkeypatch.setenv("TMPDIR", short)
        root = repository(tmp_path / "models")
        port = free_port()
        env = {
            "PYTHONPATH": str(ROOT), "CTR_HOST": "127.0.0.1", "CTR_PORT": str(port),
            "CTR_MODEL_REPOSITORY": str(root), "CTR_USE_CUDA": "false", "CTR_CTR_MODEL": "esmm",
            "CTR_WORKERS": str(workers),
        }  # fmt: skip
        log = tmp_path / "log"
        process = spawn([sys.executable, "-m", "service"], env, log, start_new_session=True)
        try:
            yield process, port, temporary, log
        finally:
            stop(process, group=True)
            with suppress(ProcessLookupError):  # what outlived its supervisor (stop signals the group it leads)
                os.killpg(process.pid, signal.SIGKILL)


def test_a_hang_up_of_the_whole_group_drains_every_worker_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A terminal's hang-up goes to the whole foreground group: it killed the supervisor (status 129, not a
    line logged, its shared folder left in TMPDIR), and then, once the supervisor turned it into SIGTERM, the
    workers still died of it at once, undrained (each exited -1)."""
    with group_of_workers(tmp_path, monkeypatch, 2) as (process, port, temporary, log):
        wait_ready(process, f"http://127.0.0.1:{port}", log)
        workers = workers_of(process.pid)
        assert len(list(temporary.glob("ctr-workers-*"))) == 1, list(temporary.iterdir())
        os.killpg(process.pid, signal.SIGHUP)
        assert process.wait(timeout=30) == 0, log.read_text()
    assert all_gone(workers, within_s=5)
    said = log.read_text()
    assert "exited with" not in said
    # the supervisor says what stopped it, and each worker's exit (it said nothing: a stray kill looked alike)
    assert "SIGHUP received: stopping; SIGTERM to workers" in said, said
    assert said.count(") exited 0") == 2, said
    assert not list(temporary.glob("ctr-workers-*")), list(temporary.iterdir())


def test_a_stop_as_the_workers_start_stops_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM as the first worker appears (the supervisor forking or its workers loading): the supervisor
    died of it at once where its handlers did not stand yet, and the workers forked so far, ignoring it while
    they loaded, served the port on, orphaned, its shared folder left behind. Now every worker drains."""
    with group_of_workers(tmp_path, monkeypatch, 4) as (process, port, temporary, log):
        seen = eventually(lambda: workers_of(process.pid), 30, "a forked worker", every_s=0.001)
        os.kill(process.pid, signal.SIGTERM)
        seen += workers_of(process.pid)
        assert process.wait(timeout=60) == 0, log.read_text()
    assert all_gone(seen, within_s=5)
    for _ in range(20):  # an orphan listens once its model is loaded
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, "a worker still serves the port"
        time.sleep(0.1)
    assert not list(temporary.glob("ctr-workers-*")), list(temporary.iterdir())
    assert "exited with" not in log.read_text()


def test_more_workers_than_cpus_are_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    """64 workers started on 2 cores without a word (each with its own sessions, about 120 MB)."""
    from service.cpus import usable_cpus
    from service.workers import warn_if_more_than_cpus

    warn_if_more_than_cpus(2, 2)
    assert not caplog.records
    warn_if_more_than_cpus(5, 2)
    assert caplog.records[0].getMessage().startswith("CTR_WORKERS=5 is more than the 2 CPUs this process may use")
    assert usable_cpus() >= 1
