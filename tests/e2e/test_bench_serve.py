"""`ctr bench serve --quick` end to end on the tiny trained ESMM: every case measured, JSON written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.bench import request_bodies
from cli.main import app
from clients.bench import v2
from clients.bench.machine import descendants
from clients.bench.serve import PAIRED_RATES, server, servers_together
from tests.support.checkout import ROOT

CASES = {
    "raw_ort",
    "http_only",
    "bare_fastapi",
    "service_100",
    "http_only_1",
    "asgi_only_1",
    "asgi_batched_1",
    "asgi_batched_thread_1",
    "callback_only_1",
    "callback_batched_1",
    "service_1_batched",
    "service_1_unbatched",
    "asgi_only_1_workers2",
    "service_1_batched_workers2",
    *v2.CASES,
}


def test_bench_serve_quick(world_repository: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app, ["bench", "serve", "--quick", "--repository", str(world_repository), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert set(report["cases"]) == CASES
    for name, case in report["cases"].items():
        assert case["candidates_per_s"] > 0, name
        assert all(step["errors"] == 0 for step in case["steps"][:1]), (name, case["steps"])
    # each service_100 step is followed by the model alone: the ceiling at that moment, for the paired ratio
    assert all(step["ceiling_candidates_per_s"] > 0 for step in report["cases"]["service_100"]["steps"])
    assert report["cases"]["service_100"]["ceiling_candidates_per_s"] > 0
    assert report["ratios"]["service_100/raw_ort_paired"] > 0
    assert set(report["ratios"]) == {
        "service_100/raw_ort",
        "service_100/raw_ort_paired",
        "service_100/bare_fastapi",
        "service_1_batched/http_only_1",
        "service_1_batched/service_1_unbatched",
        "service_1_batched/asgi_only_1",
        "asgi_batched_1/asgi_only_1",
        "asgi_batched_thread_1/asgi_only_1",
        "service_1_batched/asgi_batched_1",
        "service_1_batched/asgi_batched_thread_1",
        "callback_batched_1/asgi_only_1",
        "callback_batched_1/callback_only_1",
        "service_1_batched/callback_batched_1",
        "service_1_batched_workers2/asgi_only_1_workers2",
        "service_1_batched_workers2/asgi_only_1",
        "service_1_batched/asgi_only_1_paired",
        "service_1_batched_workers2/asgi_only_1_workers2_paired",
    }
    # each pair measured again side by side after the sweeps, in turns (ABBA): every step answered, the
    # median of the rounds' ratios in the ratios
    for name, (served, transport) in {
        "service_1_batched/asgi_only_1_paired": ("service_1_batched", "asgi_only_1"),
        "service_1_batched_workers2/asgi_only_1_workers2_paired": (
            "service_1_batched_workers2",
            "asgi_only_1_workers2",
        ),
    }.items():
        pair = report["paired"][name]
        assert [r["first"] for r in pair["rounds"]] == [served, transport], name
        for r in pair["rounds"]:
            for case in (served, transport):  # a step at each multiple of its saturation, the best kept
                assert [step["ok"] > 0 for step in r[case]["steps"]] == [True] * len(PAIRED_RATES), (name, r)
                assert r[case]["achieved_rps"] == max(step["achieved_rps"] for step in r[case]["steps"])
            assert r["ratio"] == round(r[served]["achieved_rps"] / r[transport]["achieved_rps"], 3)
        assert min(pair["ratio_range"]) <= report["ratios"][name] == pair["median_ratio"] <= max(pair["ratio_range"])
        swept = report["cases"][served]["requests_per_s"]
        assert pair["offered_rps"][served] == pytest.approx([m * swept for m in PAIRED_RATES], rel=1e-3)
        assert f"{name}, each round's ratio (its two turns side by side): " in result.output
    assert "service_1_batched" in result.output
    # the execution provider each case ran on, read back (the session's, the service's /v1/models)
    assert report["cases"]["raw_ort"]["provider"] == "CPUExecutionProvider"
    for name in ("service_100", "service_1_batched", "service_1_unbatched", "service_1_batched_workers2"):
        assert report["cases"][name]["providers"]["esmm"] == "CPUExecutionProvider", name
    assert "execution providers: raw_ort CPUExecutionProvider; service_100 CPUExecutionProvider" in result.output
    # the batches each service step formed, read from the service's V2 statistics: unbatched, one request a run
    assert report["cases"]["service_1_unbatched"]["model_runs"]["esmm"]["items_per_run"] == 1.0
    for name in ("service_100", "service_1_batched"):
        assert report["cases"][name]["model_runs"]["esmm"]["items_per_run"] >= 1.0, name
        assert all(step["model_runs"]["esmm"]["runs"] > 0 for step in report["cases"][name]["steps"]), name
    assert "items per model run at the best step: service_100 esmm" in result.output


def test_the_generator_s_connections_are_a_setting_of_the_run(world_repository: Path, tmp_path: Path) -> None:
    """``--connections``: the sweep's generator holds at most that many connections, and the report says so."""
    out = tmp_path / "bench.json"
    args = ["bench", "serve", "--quick", "--cases", "service_1_batched", "--connections", "2"]
    result = CliRunner().invoke(app, [*args, "--repository", str(world_repository), "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert report["plan"]["connections"] == 2
    assert report["command"].endswith("--connections 2")
    steps = report["cases"]["service_1_batched"]["steps"]
    assert steps[0]["ok"] > 0 and steps[0]["errors"] == 0


def test_the_service_cases_can_serve_another_checkout(world_repository: Path, tmp_path: Path) -> None:
    """``--service-root``: the same generator against another checkout's service (a before / after run)."""
    other = tmp_path / "other"
    for package in ("service", "common"):
        shutil.copytree(ROOT / package, other / package, ignore=shutil.ignore_patterns("__pycache__"))
    with server("service", world_repository, "esmm", {}, 1, other) as (port, pid):
        assert Path(os.readlink(f"/proc/{pid}/cwd")) == other.resolve()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5) as response:
            assert response.status == 200


def _scores(port: int, bodies: list[bytes]) -> list[list[dict[str, float]]]:
    """Each body's scores, the bodies sent at once (so that the floors batch them)."""

    def post(body: bytes) -> list[dict[str, float]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/score", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["scores"]

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


@pytest.mark.parametrize(
    ("kind", "on_thread"), [("asgi_batched", "false"), ("asgi_batched", "true"), ("callback_batched", "false")]
)
def test_the_batched_floors_answer_the_service_s_scores(world_repository: Path, kind: str, on_thread: str) -> None:
    """``asgi_batched`` and ``callback_batched`` (the floors of ``service_1_batched``, with and without
    ASGI) do the service's scoring work: the same model, encoder and answer, for requests sent at once
    (batched as they arrive)."""
    bodies = request_bodies(world_repository, "esmm", 1, count=16)
    with server("service", world_repository, "esmm", {}) as (port, _):
        expected = _scores(port, bodies)
    with server(kind, world_repository, "esmm", {"CTR_BENCH_MODEL_THREAD": on_thread}) as (port, _):
        got = _scores(port, bodies)
        # it checks nothing: a body the service refuses fails (500), it does not hang its batch
        with pytest.raises(urllib.error.HTTPError) as refused:
            _scores(port, [b'{"candidates": [{"not_a_feature": 1}]}'])
        assert refused.value.code == 500
        assert _scores(port, bodies[:1]) == got[:1]
    assert len(got) == len(expected) == 16
    for own, service in zip(got, expected, strict=True):
        ((own_score,), (service_score,)) = own, service  # one candidate each
        assert own_score == pytest.approx(service_score, rel=1e-6)


def test_the_callback_transport_answers_constants(world_repository: Path) -> None:
    """``callback_only`` answers as ``asgi_only`` does: one constant score per candidate."""
    bodies = request_bodies(world_repository, "esmm", 1, count=4)
    with server("asgi_only", world_repository, "esmm", {}) as (port, _):
        expected = _scores(port, bodies)
    with server("callback_only", world_repository, "esmm", {}) as (port, _):
        assert _scores(port, bodies) == expected


def test_a_sigterm_stops_the_servers_a_benchmark_started(world_repository: Path, tmp_path: Path) -> None:
    """A SIGTERM ended the bench and left its server running under init, holding its port; now it ends
    the bench as Ctrl-C does."""
    command = [sys.executable, "-m", "cli.main", "bench", "serve", "--cases", "service_100", "--step-s", "5"]
    command += ["-r", str(world_repository), "--out", str(tmp_path / "bench.json")]
    bench = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    started: list[int] = []
    for _ in range(300):  # the service it starts: a child of the bench
        started = [
            int(pid) for pid in Path(f"/proc/{bench.pid}/task/{bench.pid}/children").read_text(encoding="utf-8").split()
        ]
        if started:
            break
        time.sleep(0.1)
    assert started, "the bench started no server"
    time.sleep(2)  # its load is under way
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(timeout=60) == 128 + signal.SIGTERM
    for pid in started:
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(encoding="utf-8"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"server {pid} still runs after the bench ended")


def test_servers_started_together_are_all_stopped_where_one_fails_to_start(world_repository: Path) -> None:
    """``servers_together`` (the paired turns, ``ctr bench ab``) starts its servers at once: where one fails
    to start (here its interpreter exits at once), its error is raised and the server started beside it is
    stopped, not left serving."""
    before = set(descendants(os.getpid()))
    failing = ("service", world_repository, "esmm", {}, 1, None, "/bin/false")
    with (
        pytest.raises(RuntimeError, match="service server exited with 1"),
        servers_together(("asgi_only", world_repository, "esmm", {}), failing),
    ):
        raise AssertionError("both started")
    assert set(descendants(os.getpid())) == before
