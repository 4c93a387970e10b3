"""A model repository on storage that stalls or fails reads (a FUSE or NFS mount): the service stays up.

The event loop never waits on the disk (every route answers while a listing hangs), a load stuck in a read
answers admin requests with a 503 naming it rather than hanging them, is said after ``SLOW_LOAD_S``, and
SIGTERM still stops the service in its drain time; a version refused on a failed read is tried again by
polling; a model directory that cannot be listed is one line per reason, not a traceback per poll.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import service.models.loader as loader
import service.models.manager as manager_module
import service.routes.admin as admin_module
from common.repository import MODEL_FILE
from tests.support.app_client import AUTH, BODY, TOKEN, app_client, make_repository
from tests.support.server import running_server
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually, observe_polls

BOUND_S = 5.0  # the longest any wait here takes when the service does right


@contextmanager
def in_background(call: Callable[[], object]) -> Iterator[list[object]]:
    """``call`` in a thread for the block; its outcome in the yielded list once it has returned."""
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        thread.join(BOUND_S)


def blocking(real: Callable, release: threading.Event, entered: threading.Event, when: Callable = lambda *a: True):
    """``real``, made to wait for ``release`` (``entered`` set) where ``when(*args)``: a read the storage stalls."""

    def stalled(*args: object, **kwargs: object) -> object:
        if when(*args) and not release.is_set():
            entered.set()
            release.wait(BOUND_S * 2)
        return real(*args, **kwargs)

    return stalled


def live_within(client: TestClient, timeout_s: float = BOUND_S) -> bool:
    """Whether ``/v2/health/live`` answers 200 within ``timeout_s`` (asked from a thread: a frozen loop hangs)."""
    with in_background(lambda: client.get("/v2/health/live").status_code) as answered:
        deadline = time.monotonic() + timeout_s
        while not answered and time.monotonic() < deadline:
            time.sleep(0.02)
        return answered == [200]


@pytest.mark.parametrize("route", ["index", "load"])
def test_every_route_answers_while_a_listing_of_the_repository_stalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """The index listed the repository, and a load the model's versions for its refusals, on the event loop:
    with a stat stalled on the storage every route hung, health checks included."""
    release, entered = threading.Event(), threading.Event()
    module = admin_module if route == "index" else manager_module
    listing = "model_names" if route == "index" else "versions"
    monkeypatch.setattr(module, listing, blocking(getattr(module, listing), release, entered))
    root = make_repository(tmp_path, 1)
    release.set()  # the start lists
    with app_client(root) as client:
        release.clear()
        path = "/v2/repository/index" if route == "index" else "/v2/repository/models/esmm/load"
        try:
            with in_background(lambda: client.post(path, headers=AUTH).status_code) as answered:
                assert entered.wait(BOUND_S), "the listing was not reached"
                assert live_within(client), f"the {route} froze the event loop on a stalled listing"
                release.set()
        finally:
            release.set()
        assert answered == [200]


def test_an_admin_operation_behind_a_stalled_load_is_a_503_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A load stuck in a read held the manager's lock: every admin load or unload of any model hung behind it,
    and nothing said why. Now a 503 with Retry-After naming the load, and a warning once it has run long."""
    release, entered = threading.Event(), threading.Event()
    stalled = blocking(loader.load_version, release, entered)  # a version's read
    monkeypatch.setattr(loader, "load_version", stalled)
    monkeypatch.setattr(manager_module, "SLOW_LOAD_S", 0.2)
    monkeypatch.setattr(admin_module, "ADMIN_LOCK_WAIT_S", 0.3)
    caplog.set_level(logging.WARNING, logger="service.models.manager")
    root = make_repository(tmp_path, 1)
    release.set()  # the start loads
    with app_client(root) as client:
        release.clear()
        publish_tiny_esmm(root, seed=2)
        try:
            with in_background(lambda: client.post("/v2/repository/models/esmm/load", headers=AUTH)) as loaded:
                assert entered.wait(BOUND_S), "the load was not reached"
                busy = client.post("/v2/repository/models/esmm/unload", headers=AUTH)
                assert busy.status_code == 503 and busy.headers["Retry-After"] == "1", busy.text
                message = busy.json()["error"]
                assert message.startswith("model 'esmm' not unloaded: a load of model esmm has been running for ")
                assert message.endswith(" s; try again"), message
                eventually(lambda: "still loading model esmm version 2 after" in caplog.text, BOUND_S, "no warning")
                assert client.post("/v1/score", json=BODY).status_code == 200  # serving goes on
                release.set()
        finally:
            release.set()
        assert loaded and loaded[0].status_code == 200, loaded
    (said, *_) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("still loading")]
    assert said.endswith("the repository's storage may be stalled (admin loads and unloads answer 503 meanwhile)")


def test_sigterm_stops_a_service_whose_poll_is_stuck_in_a_read(tmp_path: Path) -> None:
    """A poll stuck in a read: admin requests hung until the drain time ran out and were then cancelled, each
    with a CancelledError traceback, and nothing said the load was stuck. Now they answer 503, the load is
    said, and SIGTERM stops the service within its drain time without a traceback."""
    root = make_repository(tmp_path / "models", 1)
    launcher = (  # the service, its reads of version 2 stalled for as long as the test lets them
        "import threading, time, service.models.manager as m, service.models.loader as l\n"
        "real = l.load_version\n"
        "def stalled(root, name, version, *args):\n"
        "    while version == 2 and time.sleep(0.05) is None:\n"
        "        pass\n"
        "    return real(root, name, version, *args)\n"
        "l.load_version, m.SLOW_LOAD_S = stalled, 0.5\n"
        "import service.routes.admin as a; a.ADMIN_LOCK_WAIT_S = 0.5\n"
        "import runpy; runpy.run_module('service', run_name='__main__')\n"
    )
    log = tmp_path / "service.log"
    command = [sys.executable, "-c", launcher]
    settings = {"poll_interval_s": "0.1", "admin_token": TOKEN, "drain_timeout_s": "2"}
    with running_server(root, log, command=command, ctr_model="esmm", **settings) as (url, process):
        publish_tiny_esmm(root, seed=2)
        eventually(lambda: "still loading model esmm version 2" in log.read_text(encoding="utf-8"), BOUND_S, "unsaid")
        busy = httpx.post(f"{url}/v2/repository/models/esmm/unload", headers=AUTH, timeout=BOUND_S * 3)
        assert busy.status_code == 503 and "a load of model esmm has been running for" in busy.json()["error"]
        assert httpx.get(f"{url}/metrics", timeout=BOUND_S).text.count('ctr_model_poll_failing{model="esmm"} 1') == 1
        with in_background(
            lambda: httpx.post(f"{url}/v2/repository/models/esmm/load", headers=AUTH, timeout=BOUND_S * 3)
        ) as waiting:
            time.sleep(0.2)  # waiting for the lock when the signal comes
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(BOUND_S * 2)
            stopped_s = time.monotonic() - started
        assert waiting and waiting[0].status_code == 503, waiting
    said = log.read_text(encoding="utf-8")
    assert stopped_s < 2 + 2.0, f"stopped after {stopped_s:.1f} s"
    assert "Traceback" not in said and "CancelledError" not in said and "Cancel " not in said, said


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_a_service_whose_start_up_load_is_stuck_in_a_read(tmp_path: Path, workers: str) -> None:
    """SIGTERM while the models load at start was looked at only once the lifespan had started: every model
    loaded and warmed up, "ready" said, then the stop; a load stuck on the storage held the process until
    SIGKILL. Now it ends at once, nothing listening yet: by the signal (143), or, with workers, exit 0."""
    root = make_repository(tmp_path / "models", 1)
    launcher = (  # the service, its read of version 1 stalled for good
        "import time, service.models.loader as l\n"
        "real = l.load_version\n"
        "def stalled(root, name, version, *args):\n"
        "    while version == 1 and time.sleep(0.05) is None:\n"
        "        pass\n"
        "    return real(root, name, version, *args)\n"
        "l.load_version = stalled\n"
        "import runpy; runpy.run_module('service', run_name='__main__')\n"
    )
    log = tmp_path / "service.log"
    command = [sys.executable, "-c", launcher]
    with running_server(root, log, command=command, ready=False, ctr_model="esmm", workers=workers) as (_, process):
        starting = "Waiting for application startup."
        eventually(lambda: log.read_text(encoding="utf-8").count(starting) == int(workers), BOUND_S, "not started")
        time.sleep(0.3)  # in the stalled read
        process.send_signal(signal.SIGTERM)
        assert process.wait(BOUND_S) == (-signal.SIGTERM if workers == "1" else 0)
    said = log.read_text(encoding="utf-8")
    assert said.count("SIGTERM while the models load at start: stopping without serving") == int(workers), said
    assert "ready: roles" not in said and "Traceback" not in said, said


def test_a_version_refused_on_a_failed_read_is_retried_by_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """EIO reading a new version's model.onnx refused it for good: its files never changed, so polling never
    tried it again after the storage recovered. Now polling tries it again after a backoff, as its reason says."""
    real_open = loader.regular_file
    failed: list[Path] = []

    def open_failing_once(path: Path) -> object:
        if path.name == MODEL_FILE and path.parent.name == "2" and not failed:
            failed.append(path)
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return real_open(path)

    caplog.set_level(logging.INFO)
    root = make_repository(tmp_path, 1)
    monkeypatch.setattr(loader, "regular_file", open_failing_once)  # the loader's reads of a version's files
    with app_client(root, poll_interval_s=0.1) as client:
        publish_tiny_esmm(root, seed=2)
        eventually(lambda: failed, BOUND_S, "version 2 not read")
        eventually(lambda: client.get("/v2/models/esmm").json()["versions"] == ["2"], BOUND_S, "not retried")
    (refused,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("model esmm version 2 refused")]
    assert "model.onnx cannot be read: Input/output error" in refused, refused
    assert refused.endswith("(retried by polling after a backoff, or by an admin load)"), refused


def test_a_refusal_on_a_failed_read_says_polling_retries_it_with_a_backoff(tmp_path: Path) -> None:
    """The reason the index gives says so, and each try waits twice the one before, up to the cap."""
    from service.models.base import ModelLoadError
    from service.models.refusal import STORAGE_RETRY_MAX_S, Refusal, storage_failed

    def refused_on(error: Exception) -> Refusal:
        try:  # as the loader refuses: a ModelLoadError raised in its handler of the read's error
            try:
                raise error
            except Exception:
                raise ModelLoadError("model.onnx cannot be read") from None
        except ModelLoadError as refused:
            return Refusal(str(refused), (), storage_failed=storage_failed(refused))

    first = refused_on(OSError(errno.EIO, "Input/output error")).retried_by_polling(None, 2.0, 100.0)
    assert (first.tries, first.retry_at) == (1, 102.0) and not first.retry_due(101.0) and first.retry_due(102.0)
    assert first.why == "model.onnx cannot be read (the storage failed the read: retried by polling, next in 2 s)"
    again = refused_on(OSError(errno.ESTALE, "Stale file handle")).retried_by_polling(first, 2.0, 200.0)
    assert (again.tries, again.retry_at) == (2, 204.0)
    assert again.why.count("retried by polling") == 1
    many_tries = Refusal("x", (), storage_failed=True, tries=1000)
    assert many_tries.retried_by_polling(many_tries, 2.0, 0.0).retry_at == STORAGE_RETRY_MAX_S
    assert not refused_on(PermissionError(errno.EACCES, "Permission denied")).storage_failed  # a chmod mends it
    assert not refused_on(ValueError("sha256 does not match")).storage_failed
    assert not Refusal("role conflict", ()).storage_failed


def test_a_model_directory_that_cannot_be_listed_is_one_line_per_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """EIO listing the model's directory logged a 32-line traceback at every poll; now one warning per reason,
    the poll gauge set while it lasts, and one line once it lists again."""
    real = manager_module.versions
    failing = threading.Event()
    failing.set()

    def listed(root: Path, name: str) -> list[int]:
        if failing.is_set():
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(root / name))
        return real(root, name)

    def gauge() -> str:
        return next(line for line in client.get("/metrics").text.splitlines() if line.startswith(FAILING))

    FAILING = 'ctr_model_poll_failing{model="esmm"} '
    caplog.set_level(logging.INFO, logger="service.models.manager")
    root = make_repository(tmp_path, 1)
    with app_client(root, poll_interval_s=0.1) as client:
        monkeypatch.setattr(manager_module, "versions", listed)
        observe_polls(client, 5)
        assert gauge() == FAILING + "1"
        failing.clear()
        eventually(lambda: gauge() == FAILING + "0", BOUND_S, "the gauge stayed set")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poll: model esmm")]
    assert lines == [
        "poll: model esmm: its directory cannot be listed: Input/output error: no new version is loaded until it is "
        "mended",
        "poll: model esmm: its serving settings and versions read again",
    ], lines
    assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text


def test_an_admin_operation_waiting_for_the_lock_keeps_its_place_in_its_queue(tmp_path: Path) -> None:
    """Its wait gave the lock's queue up at each look (every 0.1 s) and joined it again at the back, behind the
    loads that wait as long as it takes (polling's, the start's): a run of loads, none stuck, could push it past
    its 10 s into a 503. Now one acquire waits the whole time: released, the lock goes to it first."""
    from service.settings import Settings
    from tests.support.app_client import bare_manager

    async def scenario() -> list[str]:
        manager = bare_manager(Settings(model_repository=tmp_path, use_cuda=False))
        order: list[str] = []
        await manager._lock.acquire()  # a load under way

        async def admin() -> None:
            await manager._acquire_within(5.0)
            order.append("admin")
            manager._lock.release()

        async def polled() -> None:
            await manager._lock.acquire()
            order.append("poll")
            manager._lock.release()

        waiting_admin = asyncio.ensure_future(admin())
        await asyncio.sleep(0.01)
        waiting_poll = asyncio.ensure_future(polled())  # queued after the admin operation
        await asyncio.sleep(0.35)  # several of its looks
        manager._lock.release()
        await asyncio.wait_for(asyncio.gather(waiting_admin, waiting_poll), 5)
        return order

    assert asyncio.run(scenario()) == ["admin", "poll"]
