"""SIGTERM to a `ctr` command's own process (as `timeout`, systemd or a scheduler send it) ends it as Ctrl-C
does, whichever command it is: the service it started is stopped and the file it was writing removed, exit
code 143. Commands that did not ask for it ended at once, leaving both behind (cli/signals.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from contextlib import suppress
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.candidates_table import candidates_table
from tests.support.checkout import ROOT
from tests.support.ctr_process import CTR
from tests.support.tiny_model import publish_tiny_esmm
from tests.support.wait import eventually

SERVICE_LINE = re.compile(r"service on http://127\.0\.0\.1:(\d+) .* \(pid (\d+)\)")


def started(tmp_path: Path, *args: str, **variables: str) -> subprocess.Popen:
    """``ctr ARGS`` in ``tmp_path``, in a session of its own (the test's clean-up kills what is left of it), with
    no ambient CTR_* settings; its stderr to ``tmp_path/stderr.log``, where the test reads how far it got (and,
    with the fault handler on, where it was when ``exit_code`` gave up on it)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ["PATH"], "PYTHONFAULTHANDLER": "1", **variables}
    with open(tmp_path / "stderr.log", "w", encoding="utf-8") as stderr:
        return subprocess.Popen(
            [*CTR, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )


def stderr_of(tmp_path: Path) -> str:
    return (tmp_path / "stderr.log").read_text(encoding="utf-8")


def exit_code(process: subprocess.Popen, tmp_path: Path, timeout: float = 60) -> int:
    """The exit code of a process told to stop; one still running after ``timeout`` seconds fails the test with its
    threads' Python stacks (SIGABRT: the fault handler ``started`` turns on), where a bare TimeoutExpired said
    nothing of where an auction stopped by SIGTERM had hung (once, in a full suite's run; never again in 12 tries
    under load)."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        pytest.fail(f"still running {timeout:.0f} s after the stop:\n{stderr_of(tmp_path)[-6000:]}")


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def ended_by_sigterm(process: subprocess.Popen, tmp_path: Path) -> None:
    process.send_signal(signal.SIGTERM)  # to its own process alone, not its group
    assert exit_code(process, tmp_path) == 128 + signal.SIGTERM, stderr_of(tmp_path)[-3000:]


def test_sigterm_to_auction_stops_the_service_it_started(tmp_path: Path) -> None:
    """The signal comes once the service is up, after the history's two models are trained: on a day of 100
    auctions rather than --quick's 300, and on one torch thread, as another pytest process and its services
    share the CPUs (tests/conftest.py: one_torch_thread_per_process); neither changes what starts and stops the
    service."""
    process = started(
        tmp_path, "auction", "--quick", "--requests-per-day", "100", "--pipelines", "debiased", "--no-progress",
        "--configs", str(ROOT / "models"), "--work-dir", "work", "--out", "auction.json", OMP_NUM_THREADS="1",
    )  # fmt: skip
    try:
        found = eventually(lambda: SERVICE_LINE.search(stderr_of(tmp_path)), 90, lambda: stderr_of(tmp_path)[-3000:])
        port, service = int(found[1]), int(found[2])
        ended_by_sigterm(process, tmp_path)
        eventually(lambda: not running(service), 30, f"the service (pid {service}) stopped")
        assert not listening(port)
        assert not (tmp_path / "auction.json").exists()
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of what the test started
        process.wait()


def test_sigterm_to_score_removes_the_file_it_was_writing(tmp_path: Path) -> None:
    publish_tiny_esmm(tmp_path / "models")
    pq.write_table(candidates_table(sizes=[10] * 10_000).drop_columns(["request_id"]), tmp_path / "candidates.parquet")
    # a request a row: seconds of scoring, where the signal comes once the temporary file is there
    process = started(tmp_path, "score", "candidates.parquet", "-r", "models", CTR_MAX_CANDIDATES="1")
    try:
        eventually(lambda: list(tmp_path.glob(".scores.parquet.*.tmp")), 60, lambda: stderr_of(tmp_path)[-3000:])
        ended_by_sigterm(process, tmp_path)
        assert sorted(path.name for path in tmp_path.iterdir()) == ["candidates.parquet", "models", "stderr.log"]
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_auction_writes_the_report_of_the_days_that_ended(
    tmp_path: Path, stop: signal.Signals, code: int
) -> None:
    """Hours of days were lost: the report was written only once every day had run. The oracle alone (no
    training, no service) runs days of a second or less; the stop comes after day 0 is logged."""
    process = started(
        tmp_path, "auction", "--quick", "--days", "1000", "--first-seed", "4", "--pipelines", "oracle",
        "--no-progress", "--work-dir", "work", "--out", "auction.json",
    )  # fmt: skip
    try:
        eventually(lambda: "seed 4 oracle day 0:" in stderr_of(tmp_path), 60, lambda: stderr_of(tmp_path)[-3000:])
        process.send_signal(stop)
        assert exit_code(process, tmp_path) == code, stderr_of(tmp_path)[-3000:]
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    report = json.loads((tmp_path / "auction.json").read_text(encoding="utf-8"))
    done = report["partial"]["days_completed"]["oracle"]["4"]
    assert report["partial"]["interrupted_by"] == signal.Signals(stop).name and 1 <= done < 1000
    assert [d["day"] for d in report["pipelines"]["oracle"]["seeds"][0]["days"]] == list(range(done))
    assert report["seeds_run"] == [4] and (tmp_path / "auction.png").stat().st_size > 0
    assert (report["partial"]["seeds_finished"], report["partial"]["seeds_unfinished"]) == ([], [4])
    assert "interrupted: wrote the partial report of the days that ended to auction.json" in stderr_of(tmp_path)
    assert "seed(s) 4 unfinished: `ctr auction --first-seed 4 --seeds 1` (and the same other options)" in stderr_of(
        tmp_path
    )
