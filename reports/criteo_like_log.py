"""A Criteo-shaped impression log, for timing and comparing training on one's own logs (docs/scale.md).

Criteo's display-advertising log has 13 integer counts (I1-I13, heavy-tailed, often missing), 26 hashed
categorical columns (C1-C26, from ten to millions of values, Zipf-like frequencies, some missing) and a click
label at about 3% here. Clicks depend weakly on a few columns, so a model has something, not much, to learn.
The log has the columns `ctr train --logs` needs beside them (request_id, ts, position = 1, conversion = 0):

    PYTHONPATH=. python reports/criteo_like_log.py --rows 300000 --out /tmp/criteo.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COUNTS = 13
CATEGORIES = 26
# distinct values of C1..C26: from ~10 to ~100k, log-spaced, as Criteo's columns spread over orders of magnitude
CARDINALITIES = np.unique(np.geomspace(10, 100_000, CATEGORIES).astype(int)).tolist()
CLICK_RATE = 0.03


def zipf_ids(rng: np.random.Generator, rows: int, distinct: int, exponent: float = 1.1) -> np.ndarray:
    """Ids 0..distinct-1 drawn with probability proportional to 1 / rank**exponent (a few ids take most rows)."""
    weights = 1.0 / np.arange(1, distinct + 1) ** exponent
    return rng.choice(distinct, size=rows, p=weights / weights.sum())


def criteo_like(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {
        "request_id": pa.array(np.arange(rows, dtype=np.int64)),
        "ts": pa.array(1_700_000_000 + np.arange(rows, dtype=np.int64) // 10),
        "position": pa.array(np.ones(rows, dtype=np.int64)),
    }
    logit = np.full(rows, np.log(CLICK_RATE / (1 - CLICK_RATE)) - 0.15)
    for i in range(COUNTS):
        counts = np.floor(rng.lognormal(mean=1.0 + 0.2 * i, sigma=1.5, size=rows))  # heavy right tail
        missing = rng.random(rows) < 0.05 + 0.03 * (i % 4)
        if i < 3:  # a weak effect of the first counts' logarithms
            logit += 0.15 * (np.log1p(counts) - np.log1p(counts).mean())
        columns[f"I{i + 1}"] = pa.array(counts, mask=missing, type=pa.float64())
    for j, distinct in enumerate(CARDINALITIES):
        ids = zipf_ids(rng, rows, distinct)
        if j in (2, 9, 17):  # a weak per-id effect on a few columns, fixed per id
            logit += rng.normal(0.0, 0.6, size=distinct)[ids]
        missing = rng.random(rows) < (0.3 if j % 7 == 3 else 0.01)
        hashed = np.char.add(f"c{j + 1}_", ids.astype(str))  # text, as Criteo's hashed values are
        columns[f"C{j + 1}"] = pa.array(hashed, mask=missing, type=pa.string())
    click = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    columns["click"] = pa.array(click)
    columns["conversion"] = pa.array(np.zeros(rows, dtype=np.int64))
    return pa.table(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    table = criteo_like(arguments.rows, arguments.seed)
    pq.write_table(table, arguments.out)
    click_rate = float(np.mean(table["click"].to_numpy()))
    sys.stdout.write(f"wrote {arguments.out}: {table.num_rows} rows, click rate {click_rate:.4f}\n")


if __name__ == "__main__":
    main()
