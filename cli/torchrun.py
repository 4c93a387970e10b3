"""``ctr train ... --nproc N``: the same command run as N processes by PyTorch's ``torchrun``."""

from __future__ import annotations

import os
import subprocess
import sys


def launch(nproc: int, arguments: list[str]) -> int:
    """Run ``ctr ARGUMENTS`` in ``nproc`` processes on this machine (``torchrun --standalone``); returns
    torchrun's exit code, non-zero when any process failed (torchrun prints that process's error).

    The processes talk over loopback: gloo binds to ``lo`` unless GLOO_SOCKET_IFNAME says otherwise.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command += ["-m", "cli.main", "--", *arguments]  # "--": torchrun would take --logs for its --logs-specs
    environment = {"GLOO_SOCKET_IFNAME": "lo", **os.environ}
    return subprocess.run(command, env=environment, check=False).returncode
