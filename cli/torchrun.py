"""``ctr train ... --nproc N``: the same command run as N processes by PyTorch's ``torchrun``.

A process that stops on a user's mistake found only once training started (a wrong label or feature value
in a row group the statistics pass reads) leaves its message in a folder the launcher names
(``CTR_PROCESS_ERRORS``), and the command ends with that message on one line after torchrun's report of
the failure, where it said only "the error is above" below both processes' tracebacks.

torchrun's standard error (its processes' too: they inherit it) is copied to the command's as it comes, until
the command passes a stop signal on: what follows is dropped, so a stopped run ends on the command's one line
where torchrun's traceback of the signal (``SignalException: Process N got signal: 15``, 20 lines; 50, two
tracebacks, for a Ctrl-C, which reaches the processes too) came before it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cli.errors import one_line

PROCESS_ERRORS = "CTR_PROCESS_ERRORS"
PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # the signals a launcher passes on to torchrun
# How long the copy of torchrun's standard error may go on once torchrun has ended: its processes ended with it,
# but for one that outlives a torchrun killed outright (it trains on, holding the pipe open)
COPY_AFTER_END_S = 5.0


@dataclass(frozen=True)
class Launched:
    """How a run of ``launch`` ended."""

    code: int  # torchrun's exit code: non-zero when any process failed
    mistakes: list[str]  # the mistakes the processes stopped on ("process 1 of 2: ...", ``note_process_error``)
    stopped_by: int | None  # the signal this launcher was sent and passed on to torchrun, if any


def launch(nproc: int, arguments: list[str]) -> Launched:
    """Run ``ctr ARGUMENTS`` in ``nproc`` processes on this machine (``torchrun --standalone``) until they end.

    The processes talk over loopback: gloo binds to ``lo`` unless GLOO_SOCKET_IFNAME says otherwise. A
    SIGTERM, SIGINT or SIGHUP sent to this process alone (a supervisor's, ``kill PID``, ``Popen.terminate``)
    is passed on to torchrun, which stops its processes, and waited for: this process ended at once, and
    the processes trained on without it and exported a model.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    with tempfile.TemporaryDirectory(prefix="ctr-process-errors-") as errors:
        # torchrun's own files (each process's error.json) go with the rest: without --log-dir it made a
        # /tmp/torchelastic_* folder of each run and left it there
        command += [f"--log-dir={Path(errors, 'torchrun')}"]
        command += ["-m", "cli.main", "--", *arguments]  # "--": torchrun would take --logs for its --logs-specs
        environment = {"GLOO_SOCKET_IFNAME": "lo", **os.environ, PROCESS_ERRORS: errors}
        process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE)
        received: list[int] = []
        copy = threading.Thread(target=_copy_until_stopped, args=(process.stderr, received), daemon=True)
        copy.start()

        def pass_on(signum: int, _frame: object) -> None:
            received.append(signum)
            if process.poll() is None:
                process.send_signal(signum)

        previous = {signum: signal.signal(signum, pass_on) for signum in PASSED_ON}
        try:
            code = process.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        copy.join(COPY_AFTER_END_S)  # the processes' last words (a traceback) before the command's own line
        notes = sorted(Path(errors).glob("process-*.txt"), key=lambda note: int(note.stem.split("-")[1]))
        return Launched(code, [note.read_text(encoding="utf-8") for note in notes], received[0] if received else None)


def _copy_until_stopped(source: IO[bytes], stopped: list[int]) -> None:
    """``source`` to this process's standard error, chunk by chunk as written (a progress bar's ``\\r`` too),
    until ``stopped`` holds a signal; read to its end, what comes then dropped."""
    last = b"\n"
    with source:
        while chunk := os.read(source.fileno(), 65536):
            if not stopped:
                sys.stderr.buffer.write(chunk)
                sys.stderr.buffer.flush()
                last = chunk[-1:]
    if last != b"\n":  # a progress bar's line, which the dropped rest ended: the command's line starts its own
        sys.stderr.buffer.write(b"\n")
        sys.stderr.buffer.flush()


def note_process_error(error: Exception) -> None:
    """In a process ``launch`` started, leave the mistake it stopped on for the launcher, on one line;
    elsewhere (a user's own ``torchrun``), nothing."""
    folder = os.environ.get(PROCESS_ERRORS)
    if folder:
        rank, world_size = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
        Path(folder, f"process-{rank}.txt").write_text(
            f"process {rank} of {world_size}: {one_line(error)}", encoding="utf-8"
        )
