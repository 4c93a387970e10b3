"""Each peer of ``ctr bench peers`` started as the bench starts it, answering exactly the service's scores
for the same world bodies; and the whole command's smoke run. The peers need the ``bench`` extra
(``pip install -e '.[bench]'``), which CI does not install: there these tests skip and say so."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from clients.bench.peers.processes import post_json
from clients.bench.peers.runner import PEERS, started
from clients.service_process import running_service
from common.repository import read_config
from tests.support.server import port_of
from training.world import World, WorldConfig

SIZES = (1, 3, 100)


def needs(peer: str) -> pytest.MarkDecorator:
    """Skip (before any fixture runs) unless the peer's package, from the ``bench`` extra, is installed."""
    package = PEERS[peer][1]
    reason = f"{package} is not installed: the bench extra (pip install -e '.[bench]') is not (CI skips it)"
    return pytest.mark.skipif(importlib.util.find_spec(package) is None, reason=reason)


@pytest.fixture(scope="module")
def bodies(world_repository: Path) -> list[bytes]:
    world = World(WorldConfig(**read_config(world_repository, "esmm")["world"]))
    return [json.dumps(world.sample_request(n, seed=seed)).encode() for seed, n in enumerate(SIZES)]


@pytest.fixture(scope="module")
def service_scores(world_repository: Path, bodies: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> list:
    log = tmp_path_factory.mktemp("peers") / "service.log"
    with running_service(world_repository, {"ctr": "esmm", "ctcvr": "esmm"}, log) as service:
        port = port_of(service.url)
        answers = [post_json(port, "/v1/score", body) for body in bodies]
    assert all(status == 200 for status, _ in answers), answers
    return [answer["scores"] for _, answer in answers]


@pytest.mark.parametrize(
    "peer", [pytest.param(peer, marks=needs(peer)) for peer in ("ray_serve", "bentoml", "litserve")]
)
def test_peer_answers_the_services_scores(
    peer: str, world_repository: Path, bodies: list[bytes], service_scores: list, tmp_path: Path
) -> None:
    with started(peer, world_repository, "esmm", 1, bodies[0], tmp_path) as running:
        answers = [post_json(running.port, "/v1/score", body) for body in bodies]
        seen = set(running.seen)
    assert [status for status, _ in answers] == [200] * len(bodies), answers
    for (_, answer), expected, n in zip(answers, service_scores, SIZES, strict=True):
        assert len(answer["scores"]) == n
        for got, want in zip(answer["scores"], expected, strict=True):
            assert got == pytest.approx(want, rel=1e-5, abs=1e-7)
    deadline = time.monotonic() + 10  # a killed process lingers a moment until it is reaped
    while (left := [pid for pid in seen if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"peer processes outlived the bench: {left}"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@needs("litserve")
def test_bench_peers_quick(world_repository: Path, tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    args = ["bench", "peers", "--quick", "--peers", "service,litserve", "-r", str(world_repository), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads(out.read_text())
    assert set(report["peers"]) == {"service", "litserve"}
    assert report["versions"]["litserve"]
    for sizes in report["peers"].values():
        for figures in sizes.values():
            assert figures["common_rate"]["ok"] > 0 and figures["common_rate"]["server_cpu_us_per_request"] > 0
    assert set(report["ratios"]) == {"service/litserve @100", "service/litserve @1"}
