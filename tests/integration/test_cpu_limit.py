"""A service started in a container under a CPU limit below the CPUs it sees sizes ONNX Runtime's threads to
the limit (service/cpus.py): here in a cgroup of its own with a quota of one CPU's worth of time, on a
machine of at least two. Its default pool took a thread a core of the node whatever the limit. What is
checked is the setting the sessions are given, as the start's line says it (tests/service/test_cpus.py
checks the settings); the threads ONNX Runtime then makes are its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.cpu_quota import cpu_quota, needs_cpu_quota, quota_command
from tests.support.harden_requests import PAYLOAD
from tests.support.server import running_server
from tests.support.tiny_repository import repository

JSON = {"content-type": "application/json"}
below_the_cpus = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="a limit of one CPU is below the CPUs seen only from two"
)


def log_under_one_cpu(tmp_path: Path, **settings: str) -> tuple[str, Path]:
    """The log of a service started in a cgroup of its own allowed one CPU's worth of time, that answered a
    score; and the cgroup's folder."""
    root = repository(tmp_path / "models")
    log = tmp_path / "log.txt"
    with cpu_quota(1.0) as cgroup:
        command = quota_command(cgroup, [sys.executable, "-m", "service"])
        with running_server(root, log, command=command, ctr_model="esmm", **settings) as (url, _):
            assert httpx.post(f"{url}/v1/score", content=PAYLOAD, headers=JSON, timeout=10).is_success
    return log.read_text(encoding="utf-8"), cgroup


@needs_cpu_quota
@below_the_cpus
def test_a_service_under_a_cpu_quota_sizes_onnx_runtime_s_threads_to_it_and_says_so(tmp_path: Path) -> None:
    said, cgroup = log_under_one_cpu(tmp_path, log_level="INFO")
    assert f"a CPU limit of 1 CPUs ({cgroup}/cpu." in said, said
    assert "ONNX Runtime runs 1 thread(s) per operator in each of 1 worker(s)" in said, said


@needs_cpu_quota
@below_the_cpus
def test_threads_chosen_by_the_operator_are_kept_and_warned_of_beyond_the_quota(tmp_path: Path) -> None:
    said, _ = log_under_one_cpu(tmp_path, intra_op_threads="2")
    assert "CTR_INTRA_OP_THREADS=2 in each of 1 worker(s) is more than the CPU limit of 1 CPUs" in said, said
