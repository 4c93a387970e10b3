"""A log file's format, by its name: Parquet, or CSV (compressed or not)."""

from __future__ import annotations

from pathlib import Path

CSV_COMPRESSION = {".gz": "gzip", ".bz2": "bz2"}  # a CSV's compression by its name's ending, case aside
CSV_SUFFIXES = (".csv", *(f".csv{ending}" for ending in CSV_COMPRESSION))


def log_format(path: Path) -> str | None:
    """ "csv" or "parquet" by the file's name, case aside (``.CSV``, ``.csv.gz`` were skipped in a folder);
    None for another file."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return "parquet" if name.endswith(".parquet") else None
