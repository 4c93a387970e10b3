"""Reading impression logs (DESIGN.md §1): Parquet or CSV files, or a directory of Parquet shards."""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from common.features import FeatureSpec

LABEL_COLUMNS = ("position", "click", "conversion")
MANIFEST = "_manifest.json"  # beside shards; "_" keeps it out of pyarrow.dataset and Spark reads


def log_files(path: str | Path) -> list[Path]:
    """The files a log path stands for: itself, the Parquet/CSV files of a directory, or the files a
    glob pattern (``DIR/*.parquet``) matches; sorted, which is time order for shards."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".parquet", ".csv") and p.is_file())
        if not files:
            raise FileNotFoundError(f"{path} holds no .parquet or .csv files")
        return files
    if glob.has_magic(str(path)):
        files = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"no impression log matches {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"no impression log at {path}")
    return [path]


def manifest_spec(path: str | Path) -> Path | None:
    """The feature spec that a directory of shards names in its manifest (``ctr simulate --shards``), if any."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    spec = json.loads(manifest.read_text()).get("spec")
    return folder / spec if spec and (folder / spec).is_file() else None


def read_logs(path: str | Path, spec: FeatureSpec | None = None) -> pa.Table:
    """All rows of the logs at ``path``, checked for the label columns and the spec's features."""
    tables = []
    for file in log_files(path):
        tables.append(pacsv.read_csv(file) if file.suffix == ".csv" else pq.read_table(file))
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    required = list(LABEL_COLUMNS)
    if spec is not None:
        required += [f.name for f in spec.features if f.required]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise ValueError(
            f"impression log {path} lacks the columns {missing}: add them to the log "
            "(a feature can instead be made optional in the spec: required = false, default = ...)"
        )
    click = table.column("click")
    conversion = table.column("conversion")
    if pc.any(pc.and_(pc.equal(conversion, 1), pc.not_equal(click, 1))).as_py():
        raise ValueError(f"impression log {path} has conversions on unclicked impressions")
    return table


def column_array(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: strings as a unicode array, numbers as they are, nulls as None/NaN."""
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(column.type):
        return column.to_numpy(zero_copy_only=False).astype(np.float64)
    return column.to_numpy(zero_copy_only=False)


def feature_columns(table: pa.Table, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The spec's features present in ``table`` as numpy columns (absent optional ones are left out)."""
    return {f.name: column_array(table, f.name) for f in spec.features if f.name in table.column_names}


def fingerprint(path: str | Path) -> str:
    """sha256 over the bytes of every log file, in order: which data a model was trained on."""
    digest = hashlib.sha256()
    for file in log_files(path):
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
