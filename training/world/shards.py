"""The world's logs as Parquet shards with a manifest: input for streaming and distributed training.

``ctr simulate --out DIR --shards N --rows-per-shard M`` writes one simulated day per shard, in time
order (``part-00000.parquet``, ``part-00001.parquet``, ...), each in row groups of ``row_group_rows``
rows so that a reader holds one row group at a time, then ``spec.toml`` (the world's feature spec)
and, last, ``_manifest.json`` (the leading "_" keeps both out of pyarrow.dataset and Spark reads):

```json
{"format": "ctr-impression-shards/1", "rows": 4000, "policy": "feedback", "seed": 1,
 "world": {...WorldConfig...}, "spec": "_spec.toml", "row_group_rows": 65536,
 "shards": [{"file": "part-00000.parquet", "day": 0, "rows": 1000, "row_groups": 1, "sha256": "..."}]}
```

The same seeds give the same bytes. Only one day is in memory at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from training.logs import MANIFEST
from training.world.features import feature_spec
from training.world.simulate import iter_days
from training.world.world import World

logger = logging.getLogger(__name__)

SPEC_FILE = "_spec.toml"
FORMAT = "ctr-impression-shards/1"
ROW_GROUP_ROWS = 65_536  # rows per Parquet row group: the unit a streaming reader holds in memory


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
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # a directory without its manifest is incomplete
    entries = []
    days = iter_days(world.population, world.vocab, world.config, shards, rows_per_shard // n_slots, policy, seed)
    for day, table in enumerate(days):
        path = out / shard_name(day)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            pq.write_table(table, temporary, row_group_size=row_group_rows)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        entries.append(
            {
                "file": path.name,
                "day": day,
                "rows": table.num_rows,
                "row_groups": pq.ParquetFile(path).num_row_groups,
                "sha256": _sha256(path),
            }
        )
        logger.info("wrote %s: %d impressions", path, table.num_rows)
    (out / SPEC_FILE).write_text(feature_spec(world.config).to_toml())
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
    temporary = out / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, out / MANIFEST)
    return manifest


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
