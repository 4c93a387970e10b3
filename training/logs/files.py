"""The files a log path stands for: a file, the Parquet/CSV files of a directory, or those a glob matches."""

from __future__ import annotations

import glob
import re
from pathlib import Path

from training.logs.formats import log_format
from training.logs.shard_folder import refuse_unfinished


def log_files(path: str | Path, what: str = "impression log") -> list[Path]:
    """The files a log path stands for: itself, the Parquet/CSV files of a directory, or the files a
    glob pattern (``DIR/*.parquet``) matches (FileNotFoundError naming ``what`` the caller reads where
    there is none); sorted with the numbers in their paths read as numbers
    (``hour=9`` before ``hour=10``, as Hive and Spark name partitions unpadded), which is time order for
    shards and partitions. In a directory, a file or folder whose name starts with ``_`` or ``.`` is not
    the log's (Spark's ``_temporary/`` of a job still writing, ``_SUCCESS``, hidden files: pyarrow.dataset,
    Spark and Hive leave them out too); their rows were read as the log's. A folder of ``ctr simulate --shards``
    that its writer did not finish is refused (training/logs/shard_folder.py): its first shards were read as the log."""
    files = _listed_files(Path(path), what)
    for folder in sorted({file.parent for file in files}):
        refuse_unfinished(folder)
    return files


def non_displayed_files(path: str | Path) -> list[Path]:
    """``log_files`` of ``--non-displayed``'s table of candidates, where none is there said of that option: the
    retrieval trainer reads it, and ``ctr train --logs`` checks it before torch's import."""
    try:
        return log_files(path, "table")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"--non-displayed: {error}") from None


def _listed_files(path: Path, what: str) -> list[Path]:
    if path.is_dir():
        files = sorted(
            (
                p
                for p in path.rglob("*")
                if log_format(p) is not None and not _hidden(p.relative_to(path)) and p.is_file()
            ),
            key=_natural_order,
        )
        if not files:
            raise FileNotFoundError(f"{path} holds no .parquet or .csv (.csv.gz, .csv.bz2) files")
        return files
    if glob.has_magic(str(path)):
        files = sorted((Path(p) for p in glob.glob(str(path)) if Path(p).is_file()), key=_natural_order)
        if not files:
            raise FileNotFoundError(f"no {what} matches {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    return [path]


def _hidden(relative: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.parts)


def _natural_order(path: Path) -> tuple[str | int, ...]:
    """A path's sort key with each run of digits read as a number: ``hour=9`` before ``hour=10``."""
    parts = re.split(r"(\d+)", str(path))
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))
