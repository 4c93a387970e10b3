"""A folder that ``ctr simulate --shards`` writes (training/world/shards.py): the names of its files, what marks
it as that writer's, and whether the writer finished it.

The writer writes ``_spec.toml`` first (its first line is the mark) and ``_manifest.json`` last, so a folder
of its files with the spec and without the manifest is one a write stopped in: a full disk, a kill, a
simulation still running. Such a folder holds some of the shards (perhaps beside older ones a rewrite had not
yet replaced), and a reader of ``DIR/*.parquet`` trained on that part, with no warning, as if it were the log:
``refuse_unfinished`` says so instead (training/logs/files.py ``log_files`` calls it for every log read).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from common.plural import counted

MANIFEST = "_manifest.json"  # beside shards; "_" keeps it out of pyarrow.dataset and Spark reads
SPEC_FILE = "_spec.toml"
FORMAT = "ctr-impression-shards/1"
SHARD_NAME = re.compile(r"part-\d{5,}\.parquet")  # what the writer's ``shard_name`` writes, for any index
# the temporary files a write leaves only when killed part-way (os.replace renames them otherwise)
TEMPORARY_NAME = re.compile(rf"\.(?:part-\d{{5,}}\.parquet|{re.escape(MANIFEST)})\.(?:\d+\.)?tmp")
SPEC_HEADER = "# written by `ctr simulate --shards` (the world's feature spec)"  # the spec's first line


def writers_file(path: Path) -> bool:
    """Whether ``path`` is a file named as the writer names its files (spec, manifest, shards, temporary files)."""
    name = path.name
    return path.is_file() and (
        name in (SPEC_FILE, MANIFEST) or bool(SHARD_NAME.fullmatch(name) or TEMPORARY_NAME.fullmatch(name))
    )


def marked(folder: Path) -> bool:
    """Whether ``folder`` is one the writer wrote: its manifest of this format, or its spec's first line
    (a killed write leaves the spec alone). Another tool's files of these names are no mark: another's
    part-00000.parquet beside its own _spec.toml was deleted by a rewrite."""
    try:
        if json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("format") == FORMAT:
            return True
    except (OSError, ValueError, AttributeError):  # absent, not JSON, not an object
        pass
    return _spec_marked(folder)


def refuse_unfinished(folder: Path) -> None:
    """ValueError naming ``folder`` when the writer began it and did not finish: its spec's mark, no manifest,
    and nothing but the writer's files (a user's own logs beside a copy of the world's spec are theirs to read)."""
    if (folder / MANIFEST).exists() or not _spec_marked(folder):
        return
    entries = list(folder.iterdir())
    if not all(writers_file(entry) for entry in entries):
        return
    shards = sum(1 for entry in entries if SHARD_NAME.fullmatch(entry.name))
    raise ValueError(
        f"{folder} is a folder `ctr simulate --shards` did not finish writing ({counted(shards, 'shard')} "
        f"and no {MANIFEST}, which it writes last: a full disk or a kill stopped it, "
        f"or it is still running): run that `ctr simulate --out {folder} ...` again to finish it"
    )


def manifest_spec(path: str | Path) -> Path | None:
    """The feature spec that a directory of shards names in its manifest (``ctr simulate --shards``), if any."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    spec = json.loads(manifest.read_text(encoding="utf-8")).get("spec")
    return folder / spec if spec and (folder / spec).is_file() else None


def _spec_marked(folder: Path) -> bool:
    try:
        with open(folder / SPEC_FILE, encoding="utf-8", errors="replace") as spec:
            return spec.readline().rstrip("\n") == SPEC_HEADER
    except OSError:
        return False
