"""A file written whole or not at all: written beside its place under a hidden temporary name, then
renamed over it (an atomic replace on one filesystem), the temporary file removed if the writing fails.

Written in place, a full disk left a truncated file where a reader takes it for whole (an empty report at
``--out``, a report there before lost); written beside without the clean-up, it left the temporary file
taking the disk's last space (a checkpoint's, a statistics pass's). The file is flushed to the disk before the
rename and the rename after (common/flush_to_disk.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.disk_full import raise_if_disk_full
from common.flush_to_disk import flush_entries, flush_file


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """The temporary path to write ``path``'s content to (its folders made, the file created); renamed over
    ``path`` when the block ends, removed if it raises (the error says which file it was writing, in a note).
    A folder that cannot take the temporary file (a read-only mount, one the user may not write) raises its
    OSError of ``path`` itself, with no note: it said the hidden temporary name the user never gave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.touch()
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from error
    try:
        yield temporary
        flush_file(temporary)  # its data on the disk before its name: else a power loss could leave it empty
        os.replace(temporary, path)
        flush_entries(path.parent)
    except Exception as error:
        said = f"(while writing {path})"
        raise_if_disk_full(error, path.parent, said)  # torch's and numpy's own words for it: the ENOSPC it is
        error.add_note(said)
        raise
    finally:
        temporary.unlink(missing_ok=True)
