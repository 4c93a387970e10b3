"""The world's logs as Parquet shards with a manifest: input for streaming and distributed training.

``ctr simulate --out DIR --shards N --rows-per-shard M`` writes one simulated day per shard, in time
order (``part-00000.parquet``, ``part-00001.parquet``, ...), each in row groups of ``row_group_rows``
rows so that a reader holds one row group at a time, after ``_spec.toml`` (the world's feature spec,
written first: its first line says this writer wrote the folder) and before, last, ``_manifest.json``
(the leading "_" keeps both out of pyarrow.dataset and Spark reads):

```json
{"format": "ctr-impression-shards/1", "rows": 4000, "policy": "feedback", "seed": 1,
 "world": {...WorldConfig...}, "spec": "_spec.toml", "row_group_rows": 65536,
 "shards": [{"file": "part-00000.parquet", "day": 0, "rows": 1000, "row_groups": 1, "sha256": "..."}]}
```

The same seeds give the same bytes. Only one day is in memory at a time.

The folder ends up holding exactly the new shards: rewriting it with fewer shards removes the old
``part-NNNNN.parquet`` files past the new count (a reader of ``DIR/*.parquet`` read them as part of the
new log). Only files this writer wrote are ever removed: a folder that holds anything else (a user's
``sub/a.parquet``, notes), or files named as shards without this writer's spec or manifest (another
tool's ``part-00000.parquet``, a ``_spec.toml`` of the user's), is refused, naming the folder and what is
there, rather than mixed with shards or deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from common.whole_file import written_whole
from training.logs.arrow_files import arrow_input, arrow_output
from training.logs.shard_folder import FORMAT, MANIFEST, SPEC_FILE, SPEC_HEADER, marked, writers_file
from training.world.features import feature_spec
from training.world.simulate import iter_simulated_days
from training.world.world import World

logger = logging.getLogger(__name__)

ROW_GROUP_ROWS = 65_536  # rows per Parquet row group: the unit a streaming reader holds in memory
SHOWN_FOREIGN = 3  # foreign entries a refusal names


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def write_shards(
    world: World,
    out: Path,
    shards: int,
    rows_per_shard: int,
    policy: str = "feedback",
    seed: int = 1,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> dict[str, Any]:
    """Simulate ``shards`` days of ``rows_per_shard`` impressions into ``out``; returns the manifest."""
    n_slots = world.config.n_slots
    if shards < 1 or rows_per_shard < 1 or row_group_rows < 1:
        raise ValueError(
            f"shards, rows_per_shard and row_group_rows must be >= 1, not {shards}, {rows_per_shard}, {row_group_rows}"
        )
    if rows_per_shard % n_slots:
        raise ValueError(
            f"rows_per_shard must be a multiple of the world's {n_slots} slots (each request displays {n_slots} ads), "
            f"not {rows_per_shard}"
        )
    previous = _own_files(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # a directory without its manifest is incomplete
    with written_whole(out / SPEC_FILE) as temporary:  # first: the mark; whole, or a full disk left it empty
        temporary.write_text(f"{SPEC_HEADER}\n{feature_spec(world.config).to_toml()}", encoding="utf-8")
    kept = {SPEC_FILE, *(shard_name(day) for day in range(shards))}  # the spec written, each shard replaced below
    for stale in previous:
        if stale.name not in kept:
            stale.unlink(missing_ok=True)
    entries = []
    days = iter_simulated_days(
        world.population, world.vocab, world.config, shards, rows_per_shard // n_slots, policy, seed
    )
    for day, table in enumerate(simulated.displayed for simulated in days):
        path = out / shard_name(day)
        with written_whole(path) as temporary, arrow_output(temporary) as file:
            pq.write_table(table, file, row_group_size=row_group_rows)
        entries.append(
            {
                "file": path.name,
                "day": day,
                "rows": table.num_rows,
                "row_groups": _row_groups(path),
                "sha256": _sha256(path),
            }
        )
        logger.info("wrote %s: %d impressions", path, table.num_rows)
    manifest = {
        "format": FORMAT,
        "rows": sum(e["rows"] for e in entries),
        "policy": policy,
        "seed": seed,
        "world": asdict(world.config),
        "spec": SPEC_FILE,
        "row_group_rows": row_group_rows,
        "shards": entries,
    }
    with written_whole(out / MANIFEST) as temporary:
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _own_files(out: Path) -> list[Path]:
    """The files of ``out`` a previous ``write_shards`` wrote (shards, spec, manifest, a killed write's
    temporary files; its spec, written first, or its manifest says the folder is one it wrote); ValueError
    naming ``out`` and what is there when it holds anything else, or files named as shards without that
    mark: shards written among a user's files would be read together with them (``log_files`` reads every
    Parquet file below a folder), and removing those is not this writer's to do."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder for shards")
    entries = sorted(out.iterdir())
    foreign = [p for p in entries if not writers_file(p)]
    if entries and not foreign and not marked(out):  # files named as shards, not this writer's
        shown = ", ".join(p.name for p in entries[:SHOWN_FOREIGN])
        more = f" and {len(entries) - SHOWN_FOREIGN} more" if len(entries) > SHOWN_FOREIGN else ""
        raise ValueError(
            f"{out} holds files named as shards ({shown}{more}) but no {SPEC_FILE} or {MANIFEST} of "
            "`ctr simulate --shards`: delete them if a killed write left them, or write into another folder"
        )
    if foreign:
        shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in foreign[:SHOWN_FOREIGN])
        more = f" and {len(foreign) - SHOWN_FOREIGN} more" if len(foreign) > SHOWN_FOREIGN else ""
        raise ValueError(
            f"{out} holds files the shard writer did not write ({shown}{more}): "
            "write shards into an empty or new folder, or one that holds only shards"
        )
    return entries


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _row_groups(path: Path) -> int:
    with arrow_input(path) as file:
        return pq.ParquetFile(file).num_row_groups
