"""`ctr docs-check` when it cannot run: nothing at --url, no repository to serve, a service that does not get
ready, a SIGTERM; each said once, in one line, with nothing left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import suppress
from pathlib import Path

import pytest

from cli.docs_check import check
from clients.service_process import free_port
from tests.support.checkout import ROOT
from tests.support.ctr_process import CTR
from tests.support.docs_page import page
from tests.support.tiny_repository import repository as tiny_repository
from tests.support.wait import eventually


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """No ambient CTR_* settings; temporary folders under ``tmp_path/tmp``, where a test sees what is left."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {"PYTHONPATH": str(ROOT), "PATH": os.environ["PATH"], "TMPDIR": str(tmp_path / "tmp"), **variables}


def docs_check(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    command = [*CTR, "docs-check", *args]
    env = environment(tmp_path, **variables)
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def scratch_folders(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "tmp").glob("docs-check-*"))


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_nothing_at_url_is_said_once_before_any_example(tmp_path):
    page(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"  # bound and closed again: nothing listens there
    line = one_error_line(docs_check(tmp_path, "page.md", "--url", url))
    assert line.startswith(f"error: --url {url}: no service answers there")  # `ctr evaluate serving`'s words


def test_a_page_named_that_holds_no_example_is_refused_before_the_service_starts(tmp_path):
    """A wrong file (LICENSE) was "0 examples in 1 files: the answers' shapes match", exit 0."""
    page(tmp_path)
    (tmp_path / "notes.md").write_text("# Notes\n\n```sh\nctr serve\n```\n")  # a command, no curl with an answer
    line = one_error_line(docs_check(tmp_path, "page.md", "notes.md", "-r", "absent"))
    assert line.startswith("error: notes.md holds no example: a curl command in a ```sh or ```bash block")
    assert scratch_folders(tmp_path) == []


def test_a_failed_example_names_its_location_once(tmp_path):
    path = page(tmp_path, setup="echo broken >&2; false")
    problems = check([path], "http://127.0.0.1:1", tmp_path, exact=True, write=False)
    assert problems == [f"{path}:5: exit code 1: broken"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("absent", "error: --repository absent does not exist"),
        ("empty", "error: --repository empty holds no exported version of esmm, which the service serves"),
    ],
)
def test_a_repository_that_cannot_be_served_is_refused_at_once(tmp_path, given, expected):
    page(tmp_path)
    (tmp_path / "empty").mkdir()
    done = docs_check(tmp_path, "page.md", "-r", given)
    assert one_error_line(done).startswith(expected)
    assert "values not compared" not in done.stderr  # it said the models differed from the recorded ones


def test_a_service_that_does_not_get_ready_is_one_line_with_its_reason(tmp_path):
    page(tmp_path)
    tiny_repository(tmp_path / "repository")
    with socket.create_server(("127.0.0.1", 0)) as taken:  # the service's gRPC port: it exits, unable to listen
        port = taken.getsockname()[1]
        done = docs_check(tmp_path, "page.md", "-r", "repository", CTR_GRPC_PORT=str(port))
    assert one_error_line(done) == (
        f"error: the service over repository did not get ready: cannot listen on 127.0.0.1:{port} (CTR_GRPC_PORT):"
        " Address already in use"
    )
    assert scratch_folders(tmp_path) == []  # its log's folder is gone, and not named


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8").split()]


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(encoding="utf-8").split("\0")
    except FileNotFoundError:  # it has exited meanwhile
        return []


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_stops_the_service_it_started_and_removes_its_folders(tmp_path):
    page(tmp_path, setup="exec sleep 100")  # an example still running when the signal comes
    tiny_repository(tmp_path / "repository")
    command = [*CTR, "docs-check", "page.md", "-r", "repository"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        # the service is ready once the example runs: its setup is the docs-check's other child
        started = eventually(
            lambda: (
                len(kids := children(process.pid)) == 2 and any("sleep" in command_line(k)[0] for k in kids) and kids
            ),
            60,
            "the service ready and the example running",
        )
        service = next(kid for kid in started if "serve" in command_line(kid))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        eventually(lambda: not running(service), 30, "the service stopped")
        assert scratch_folders(tmp_path) == []  # the service's and the example's
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of what the test started
        process.wait()
