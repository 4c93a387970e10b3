"""The line `ctr export` (and `ctr train --export`) prints on stdout for its outcome, and its reading by
`ctr prepare`, which finds it in each training process's log: one place, so that the two cannot drift apart.

Two outcomes: this call published a version, or the newest version already held the same export and nothing
was published (training/export.py). Which one is what the export step itself decided under the publishing
lock: the CLI once compared with a list of versions read before the lock, and said "exported esmm version 1"
of a version another process had published meanwhile.
"""

from __future__ import annotations

import re
from pathlib import Path

PUBLISHED = re.compile(r"^exported (?P<name>\S+) version (?P<version>\d+) to ")
ALREADY_HELD = re.compile(r"^(?P<name>\S+) version (?P<version>\d+) \(.*\) already holds this export$")


def export_line(name: str, version: int, directory: Path, published: bool) -> str:
    """The stdout line of an export of ``name`` that published ``version`` (in ``directory``), or found it
    already held the same export (``published`` False)."""
    if published:
        return f"exported {name} version {version} to {directory}"
    # a warning on stderr says why; stdout said nothing once, and a script reading it found no version
    return f"{name} version {version} ({directory}) already holds this export"


def read_export_line(lines: list[str]) -> tuple[int, bool] | None:
    """(version, published) as the last export line among ``lines`` says, or None when none does."""
    for line in reversed(lines):
        for pattern, published in ((PUBLISHED, True), (ALREADY_HELD, False)):
            if found := pattern.match(line):
                return int(found["version"]), published
    return None
