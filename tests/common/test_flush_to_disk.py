"""A published version's files and folder reach the disk before its rename makes it visible, and the rename
itself after, as does a file written whole (common/flush_to_disk.py). A power loss cannot be staged here; the
system calls made can: the writing runs under ``strace``, which names each descriptor's path (``-y``)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.checkout import ROOT

PUBLISH = """
import sys
from pathlib import Path
from common.repository import publish_version

def write(directory, version):
    (directory / "model.onnx").write_bytes(b"onnx" * 1000)
    (directory / "model.json").write_text("{}", encoding="utf-8")

publish_version(Path(sys.argv[1]), "m", write)
"""
WRITE_WHOLE = """
import sys
from pathlib import Path
from common.whole_file import written_whole

with written_whole(Path(sys.argv[1]) / "report.json") as temporary:
    temporary.write_text("{}", encoding="utf-8")
"""
CALL = re.compile(r"^\d+ +(?P<call>fsync|renameat2|renameat|rename)\((?P<arguments>.*)\) += 0$")


def traced_calls(script: str, repository: Path, trace: Path) -> list[tuple[str, str]]:
    command = ["strace", "-f", "-y", "-qq", "-e", "trace=fsync,rename,renameat,renameat2", "-o", str(trace)]
    subprocess.run(
        [*command, sys.executable, "-c", script, str(repository)],
        cwd=ROOT,
        check=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    lines = trace.read_text(encoding="utf-8").splitlines()
    found = (match for match in map(CALL.match, lines) if match)
    # Python's own (a byte-code cache written by a rename) are not the publish's
    return [(match["call"], match["arguments"]) for match in found if str(repository) in match["arguments"]]


def strace_runs() -> bool:
    if shutil.which("strace") is None:
        return False
    try:  # a container without CAP_SYS_PTRACE, or a seccomp profile refusing ptrace, has it fail
        return subprocess.run(["strace", "-qq", "-o", "/dev/null", "true"], timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


NEEDS_STRACE = pytest.mark.skipif(not strace_runs(), reason="needs strace, allowed to trace a child (ptrace)")


@NEEDS_STRACE
def test_a_version_is_on_the_disk_before_its_name_and_its_name_after(tmp_path):
    repository = (tmp_path / "repository").resolve()  # strace names descriptors by their real paths
    (repository / "m").mkdir(parents=True)
    calls = traced_calls(PUBLISH, repository, tmp_path / "trace.txt")

    renames = [index for index, (call, _) in enumerate(calls) if call.startswith("rename")]
    assert len(renames) == 1, calls
    rename = renames[0]
    assert f'"{repository}/m/1"' in calls[rename][1], calls[rename]
    synced_before = {arguments for call, arguments in calls[:rename] if call == "fsync"}
    staging = re.search(r'"([^"]*/\.staging-[0-9a-f]+)"', calls[rename][1]).group(1)
    for path in (f"{staging}/model.onnx", f"{staging}/model.json", staging):
        assert any(arguments.endswith(f"<{path}>") for arguments in synced_before), (path, calls)
    synced_after = [arguments for call, arguments in calls[rename + 1 :] if call == "fsync"]
    assert any(arguments.endswith(f"<{repository}/m>") for arguments in synced_after), calls


@NEEDS_STRACE
def test_a_file_written_whole_is_on_the_disk_before_its_name_and_its_name_after(tmp_path):
    folder = tmp_path.resolve()
    calls = traced_calls(WRITE_WHOLE, folder, tmp_path / "trace.txt")

    (rename,) = [index for index, (call, _) in enumerate(calls) if call.startswith("rename")]
    temporary = re.search(r'"([^"]*\.report\.json\.\d+\.tmp)"', calls[rename][1]).group(1)
    assert calls[rename][1].endswith(f'"{folder}/report.json"'), calls[rename]
    assert any(call == "fsync" and arguments.endswith(f"<{temporary}>") for call, arguments in calls[:rename]), calls
    assert any(call == "fsync" and arguments.endswith(f"<{folder}>") for call, arguments in calls[rename + 1 :]), calls


@NEEDS_STRACE
def test_a_folder_the_file_system_cannot_flush_leaves_the_published_version_published(tmp_path):
    """Some network and FUSE file systems answer a directory's fsync EINVAL: after the rename, that made an
    export fail whose version was in place (a retry published a second copy). The publish's fourth fsync (model
    .onnx, model.json, the staging folder, then the model's folder) is made to fail so."""
    repository = (tmp_path / "repository").resolve()
    (repository / "m").mkdir(parents=True)
    inject = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:error=EINVAL:when=4"]
    done = subprocess.run(
        [*inject, sys.executable, "-c", PUBLISH, str(repository)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(path.name for path in (repository / "m").iterdir()) == ["1"]
