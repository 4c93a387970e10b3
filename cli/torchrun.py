"""``ctr train ... --nproc N``: the same command run as N processes by PyTorch's ``torchrun``.

A process that stops on a user's mistake found only once training started (a wrong label or feature value
in a row group the statistics pass reads) leaves its message in a folder the launcher names
(``CTR_PROCESS_ERRORS``), and the command ends with that message on one line after torchrun's report of
the failure, where it said only "the error is above" below both processes' tracebacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cli.errors import one_line

PROCESS_ERRORS = "CTR_PROCESS_ERRORS"


def launch(nproc: int, arguments: list[str]) -> tuple[int, list[str]]:
    """Run ``ctr ARGUMENTS`` in ``nproc`` processes on this machine (``torchrun --standalone``); returns
    torchrun's exit code, non-zero when any process failed, and the mistakes the processes stopped on
    ("process 1 of 2: ...", see ``note_process_error``).

    The processes talk over loopback: gloo binds to ``lo`` unless GLOO_SOCKET_IFNAME says otherwise.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command += ["-m", "cli.main", "--", *arguments]  # "--": torchrun would take --logs for its --logs-specs
    with tempfile.TemporaryDirectory(prefix="ctr-process-errors-") as errors:
        environment = {"GLOO_SOCKET_IFNAME": "lo", **os.environ, PROCESS_ERRORS: errors}
        code = subprocess.run(command, env=environment, check=False).returncode
        notes = sorted(Path(errors).glob("process-*.txt"), key=lambda note: int(note.stem.split("-")[1]))
        return code, [note.read_text() for note in notes]


def note_process_error(error: Exception) -> None:
    """In a process ``launch`` started, leave the mistake it stopped on for the launcher, on one line;
    elsewhere (a user's own ``torchrun``), nothing."""
    folder = os.environ.get(PROCESS_ERRORS)
    if folder:
        rank, world_size = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
        Path(folder, f"process-{rank}.txt").write_text(f"process {rank} of {world_size}: {one_line(error)}")
