"""What code produced a result: the versions of the packages that shape it and the git commit.

Reruns with the same seed are identical, yet two machines gave scores 1-10 % apart (docs/results.md)
with nothing recorded to tell their environments apart: only torch is pinned. model.json (the
exporter) and the report of every ``ctr`` command that measures something (cli/reports.py) record
``provenance()``. The versions are read from the installed distributions' metadata, so nothing is
imported for them (the service never imports torch); the commit is that of the checkout the code runs
from, absent when it runs from an installed package, with ``dirty`` when tracked files differ from it.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from common.version import DISTRIBUTION, VERSION

# The distributions whose versions can change a number: this project, the arrays, the training, the
# exported graph and its runtime (one of the two installed), the logs' reader.
PACKAGES = ("numpy", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "pyarrow")
GIT_TIMEOUT_S = 2.0
CHECKOUT = Path(__file__).resolve().parents[1]  # the folder holding common/: a checkout's root when run from one


def provenance() -> dict[str, Any]:
    """``{"packages": {"debiased-ctr": ..., "python": ..., "numpy": ..., ...}, "git": {"commit": ...,
    "dirty": ...}}``; a package not installed is left out, and ``git`` where the code is no checkout."""
    record: dict[str, Any] = {"packages": package_versions()}
    git = git_state(CHECKOUT)
    if git is not None:
        record["git"] = git
    return record


def package_versions() -> dict[str, str]:
    versions = {DISTRIBUTION: VERSION, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache  # one process, one checkout: asked once, however many reports it writes
def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out at ``folder`` and whether tracked files differ from it; None where ``folder``
    is no git checkout, git is not installed, or it does not answer within GIT_TIMEOUT_S."""
    if not (folder / ".git").exists():  # a directory in a clone, a file in a worktree; absent in a wheel
        return None
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        changed = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changed)}


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
    )
    return done.stdout.strip()
