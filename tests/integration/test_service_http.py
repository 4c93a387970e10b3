"""The service under real uvicorn on a loopback port, started as ``python -m service`` would be."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.repository import MANIFEST_FILE, version_dir
from tests.support.server import port_of, running_server
from tests.support.tiny_model import publish_tiny_esmm


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    repository = tmp_path_factory.mktemp("models")
    publish_tiny_esmm(repository)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(repository, log, ctr_model="esmm", worker="2") as (url, process):  # CTR_WORKER: a typo
        yield url, process
    assert process.returncode == 0, log.read_text()
    assert "model esmm version 1 loaded" in log.read_text()
    assert "CTR_WORKER is not a setting; ignored (did you mean CTR_WORKERS?)" in log.read_text()


@pytest.fixture
def server(server_process: tuple[str, subprocess.Popen]) -> str:
    return server_process[0]


def test_scores_over_http(server: str) -> None:
    body = {
        "context": {"user_id": "u_9", "hour": 8},
        "candidates": [{"ad_id": f"ad_{i}", "ad_price": float(i)} for i in range(20)],
    }
    response = httpx.post(f"{server}/v1/score", json=body, timeout=10.0)
    assert response.status_code == 200
    result = response.json()
    assert result["models"]["ctr"] == {"name": "esmm", "version": 1}
    assert len(result["scores"]) == 20
    for score in result["scores"]:
        assert 0.0 <= score["pctcvr"] <= score["pctr"] <= 1.0
        assert score["pcvr"] == pytest.approx(score["pctcvr"] / score["pctr"], rel=1e-9)


def test_errors_over_http(server: str) -> None:
    response = httpx.post(
        f"{server}/v1/score",
        content=b'{"candidates": [{"ad_id": NaN}]}',
        headers={"content-type": "application/json"},
        timeout=10.0,
    )
    assert response.status_code == 400
    assert "NaN" in response.json()["error"]
    too_big = httpx.post(
        f"{server}/v1/score",
        content=b" " * (4 * 1024 * 1024 + 1),
        headers={"content-type": "application/json"},
        timeout=10.0,
    )
    assert too_big.status_code == 413


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_health_answers_head_as_get_without_a_body(server: str, path: str) -> None:
    """A load balancer's HEAD probe: 200 with the GET answer's length, and not a byte of body after the
    headers (read to the close, on a raw connection: an HTTP client would not read a HEAD's body)."""
    get = httpx.get(f"{server}{path}", timeout=10.0)
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as client:
        client.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), received
    assert f"content-length: {len(get.content)}".encode() in head.lower()
    assert body == b""


def test_models_listing_reports_the_provider(server: str) -> None:
    (model,) = httpx.get(f"{server}/v1/models", timeout=10.0).json()["models"]
    assert model["provider"] == "CPUExecutionProvider"


def test_server_process_loaded_no_torch(server_process: tuple[str, subprocess.Popen]) -> None:
    url, process = server_process
    assert httpx.get(f"{url}/v2/health/ready", timeout=10.0).status_code == 200
    maps = Path(f"/proc/{process.pid}/maps")
    if not maps.exists():
        pytest.skip("no /proc here; tests/service/test_no_torch.py checks sys.modules instead")
    assert "torch" not in maps.read_text(encoding="utf-8")


def test_an_admin_load_of_a_newer_release_s_version_answers_409_saying_so(tmp_path: Path) -> None:
    """A version whose model.json holds a field this release does not know was a 409 saying "model.json is
    malformed: settings [...] are unknown (did you mean ...)"; it says what the file probably is, who wrote
    it and what to do, and the version before it goes on serving."""
    repository = tmp_path / "models"
    publish_tiny_esmm(repository, seed=1)
    token = "newer-release-admin-token"
    with running_server(repository, tmp_path / "server.log", ctr_model="esmm", admin_token=token) as (url, _):
        newer = version_dir(repository, "esmm", publish_tiny_esmm(repository, seed=2)) / MANIFEST_FILE
        written = json.loads(newer.read_text(encoding="utf-8"))
        provenance = {"git": {"commit": "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d", "dirty": False}}
        newer.write_text(json.dumps(written | {"format_version": 2, "provenance": provenance}), encoding="utf-8")
        answer = httpx.post(
            f"{url}/v2/repository/models/esmm/load", headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert (
            "version 2 refused: model.json holds fields ['format_version'] that this release does not know: it was "
            in error
        )
        assert "probably written by a newer release (provenance: commit 1a2b3c4d5e6f); upgrade the service" in error
        assert "malformed" not in error and "did you mean" not in error, error
        body = {"candidates": [{"user_id": "u", "ad_id": "a", "ad_price": 1.0}]}
        assert httpx.post(f"{url}/v1/score", json=body, timeout=10.0).json()["models"]["ctr"]["version"] == 1
