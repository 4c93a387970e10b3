"""A refused version: why it was refused, and its files as they were when it was.

Polling does not load a refused version again while its files stay as they were: it would fail the same
checks at every poll (a reload storm). Once they change it does, so a version copied into the repository
file by file (``mkdir esmm/6``, then ``model.json``, then ``model.onnx``), not published by an atomic
rename, is refused while half there and served once whole. A file's name, size, modification and
change times and inode tell a change without reading it; whether the change is one of content (not a
chmod's) is read once it is seen (``content_differs``).

A version refused because the storage failed a read (EIO from a FUSE daemon, ESTALE or ETIMEDOUT from a
network filesystem) is another matter: its files are fine and no change of them will come to say that the
storage recovered (a stat shows none), so polling tried it never again until an admin load. Polling tries
it again after a backoff instead, doubling from the poll interval up to ``STORAGE_RETRY_MAX_S``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from common.repository import MANIFEST_FILE, Manifest, read_manifest, sha256_file, version_dir
from common.storage_errors import FAILED_STORAGE_ERRNOS, PASSING_ERRNOS

# (name, size in bytes, modification time, inode, change time; times in ns) per file, by name: the inode and
# the change time too, which no copy can set (cp -p and tar restore the modification time)
Files = tuple[tuple[str, int, int, int, int], ...]

# a read the storage failed (common/storage_errors.py), or one that passes by itself: a version refused on one is
# tried again after a wait, its files as they were
STORAGE_ERRNOS = FAILED_STORAGE_ERRNOS | PASSING_ERRNOS
STORAGE_RETRY_MAX_S = 300.0  # the longest polling waits to try a version again after a failed read of the storage


def version_files(directory: Path) -> Files:
    """The files of a version directory as they are now (none when it cannot be listed)."""
    files = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        stat = entry.stat()
                        files.append((entry.name, stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns))
                except OSError:  # removed while listed
                    continue
    except OSError:
        return ()
    return tuple(sorted(files))


def changed_names(before: Files, now: Files) -> set[str]:
    """The names of the files whose entry differs between two listings (added and removed ones included)."""
    return {entry[0] for entry in set(before) ^ set(now)}


def content_differs(root: Path, manifest: Manifest, changed: set[str]) -> bool:
    """Whether the files named ``changed`` of the version ``manifest`` describes hold other content now: its
    ``model.json`` read again, where it is among them, or a file it lists whose sha256 is not the one it gives
    (the others' entries unchanged: a catalog of gigabytes is not read again for a chmod of model.json).
    Unreadable counts as other."""
    directory = version_dir(root, manifest.name, manifest.version)
    listed = manifest.file_sha256s
    try:
        if MANIFEST_FILE in changed and read_manifest(root, manifest.name, manifest.version) != manifest:
            return True
        return any(sha256_file(directory / name) != listed[name] for name in sorted(changed & listed.keys()))
    except Exception:  # unreadable, malformed, of a newer release: not what was loaded
        return True


def storage_failed(error: BaseException) -> bool:
    """Whether a load's error is a read the storage failed (``STORAGE_ERRNOS``): the OSError itself, or a
    ModelLoadError raised on one (``raise ... from None`` hides that OSError from tracebacks, not from its
    ``__context__``)."""
    cause = error if isinstance(error, OSError) else error.__context__
    return isinstance(cause, OSError) and cause.errno in STORAGE_ERRNOS


@dataclass(frozen=True)
class Refusal:
    why: str  # what the load found wrong, as the logs, the admin answer and the repository index say
    files: Files  # the version's files when the load that refused it began
    # for a version refused because it cannot serve beside the other role models (a role conflict): their
    # (name, version)s served then; once they change it is worth loading again. () for a failed check
    beside: tuple[tuple[str, int], ...] = ()
    storage_failed: bool = False  # refused on a read the storage failed (``storage_failed``): retried after a wait
    retry_at: float | None = None  # when polling tries it again whatever its files (time.monotonic()), if it does
    tries: int = 0  # the loads refused in a row on the storage's failures: how long the next wait is

    def files_changed(self, directory: Path) -> bool:
        """Whether the version's files differ from those it was refused on: worth loading again."""
        return version_files(directory) != self.files

    def retry_due(self, now: float) -> bool:
        """Whether polling tries the version again now, its files as they were."""
        return self.retry_at is not None and now >= self.retry_at

    def retried_by_polling(self, before: Refusal | None, interval_s: float, now: float) -> Refusal:
        """This refusal on a read the storage failed, with polling's next try: one poll interval after the first,
        twice the wait after each next (``before``: the refusal it follows), up to ``STORAGE_RETRY_MAX_S``;
        its reason says so (once: each load's refusal has its own)."""
        tries = before.tries + 1 if before is not None and before.storage_failed else 1
        wait_s = min(interval_s * 2 ** min(tries - 1, 30), max(STORAGE_RETRY_MAX_S, interval_s))
        why = f"{self.why} (the storage failed the read: retried by polling, next in {wait_s:g} s)"
        return replace(self, why=why, retry_at=now + wait_s, tries=tries)
