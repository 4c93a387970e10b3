"""``ctr bench peers``' own logic: CPU per request per process, the sustainable rate, the ratios, and the
process tree it sums (the peers themselves are started in tests/e2e/test_bench_peers.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pytest

from clients.bench.machine import descendants
from clients.bench.peers.processes import PeerProcess, label, label_of
from clients.bench.peers.runner import PEERS, PeerPlan, cpu_breakdown, missing_packages, pinned, ratios, sustainable


def step(offered: float, achieved: float, p99: float, errors: int = 0, size: int = 1) -> dict:
    return {
        "offered_rps": offered,
        "achieved_rps": achieved,
        "candidates_per_s": achieved * size,
        "p99_ms": p99,
        "errors": errors,
        "ok": int(achieved),
    }


def test_cpu_breakdown_sums_processes_by_label_per_request() -> None:
    before = {1: ("ray::ProxyActor", 1.0), 2: ("ray::ServeReplica", 2.0), 3: ("raylet", 0.5)}
    after = {
        1: ("ray::ProxyActor", 1.3),
        2: ("ray::ServeReplica", 2.1),
        3: ("raylet", 0.5),  # idle: left out
        4: ("ray::ServeReplica", 0.1),  # started in between: counts from zero
    }
    assert cpu_breakdown(before, after, requests=1000) == {"ray::ProxyActor": 300.0, "ray::ServeReplica": 200.0}
    assert list(cpu_breakdown(before, after, 1000)) == ["ray::ProxyActor", "ray::ServeReplica"]  # largest first


def test_sustainable_is_the_best_step_within_the_slo_that_kept_up() -> None:
    steps = [
        step(100, 100, 3.0),
        step(160, 160, 9.0),
        step(256, 250, 40.0),  # over the SLO
        step(300, 310, 5.0, errors=2),  # errors
        step(410, 300, 20.0),  # fell behind (< 90 % of offered)
    ]
    assert sustainable(steps, slo_ms=25.0)["offered_rps"] == 160
    assert sustainable([step(100, 100, 30.0)], slo_ms=25.0) is None


def test_ratios_are_the_service_over_each_peer_per_size() -> None:
    results = {
        "service": {"1": {"sustainable_candidates_per_s": 9000.0}, "100": {"sustainable_candidates_per_s": 60000.0}},
        "ray_serve": {"1": {"sustainable_candidates_per_s": 1500.0}, "100": {"sustainable_candidates_per_s": None}},
    }
    assert ratios(results) == {"service/ray_serve @1": 6.0, "service/ray_serve @100": None}


def test_descendants_follow_the_process_tree() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
            "print(p.pid, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        grandchild = int(child.stdout.readline())
        tree = descendants(os.getpid())
        assert child.pid in tree and grandchild in tree
        assert label(child.pid).startswith("python")
    finally:
        for pid in (grandchild, child.pid):
            os.kill(pid, 9)
        child.wait()


def test_missing_packages_names_the_bench_extra_distributions() -> None:
    assert missing_packages(["service"]) == []
    for name in ("ray_serve", "bentoml", "litserve"):
        module = PEERS[name][1]
        installed = importlib.util.find_spec(module) is not None
        assert missing_packages([name]) == ([] if installed else [module])


def test_process_labels_name_what_each_process_is() -> None:
    assert (
        label_of(["ray::ServeReplica:default:Scorer.handle_request_with_rejection"])
        == "ray::ServeReplica:default:Scorer"
    )
    assert label_of(["/venv/bin/raylet", "--node_ip_address=127.0.0.1"]) == "raylet"
    bento = [
        "/venv/bin/python",
        "-m",
        "_bentoml_impl.worker.service",
        "app:Scorer",
        "--service-name",
        "Model",
        "--fd",
        "6",
    ]
    assert label_of(bento) == "python _bentoml_impl.worker.service Model"
    spawned = ["/venv/bin/python", "-B", "-c", "from multiprocessing.spawn import spawn_main; spawn_main()", "--fork"]
    assert label_of(spawned) == "python multiprocessing.spawn"
    assert label_of(["/venv/bin/python", "-m", "service"]) == "python service"
    assert label_of([]) == "?"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to confine a server to one of them")
def test_pinned_confines_the_server_tree_and_frees_the_generator() -> None:
    cores = sorted(os.sched_getaffinity(0))
    code = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)  # its second thread is running
    try:
        peer = PeerProcess("sleeper", 0, child.pid)
        with pinned(peer, PeerPlan(server_cpus=frozenset({cores[-1]}))):
            threads = [int(tid) for tid in os.listdir(f"/proc/{child.pid}/task")]
            assert len(threads) == 2 and all(os.sched_getaffinity(tid) == {cores[-1]} for tid in threads)
            assert os.sched_getaffinity(0) == set(cores[:-1])
        assert os.sched_getaffinity(0) == set(cores)
        with pytest.raises(ValueError, match="strict subset"), pinned(peer, PeerPlan(server_cpus=frozenset(cores))):
            pass
    finally:
        child.kill()
        child.wait()
