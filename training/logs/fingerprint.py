"""Which data a model was trained on: a hash of its log files' names and bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from training.logs.files import log_files


def log_name(file: Path, path: str | Path) -> str:
    """How a log file is named in a fingerprint: its path below the log directory (its folders' partition
    keys are data: two logs whose files swap folders differ), or its name."""
    path = Path(path)
    return file.relative_to(path).as_posix() if path.is_dir() else file.name


def fingerprint(path: str | Path) -> str:
    """sha256 over the name (``log_name``) and bytes of every log file, in order: which data a model was
    trained on."""
    digest = hashlib.sha256()
    for file in log_files(path):
        digest.update(log_name(file, path).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
