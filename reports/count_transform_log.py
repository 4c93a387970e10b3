"""A synthetic impression log with heavy-tailed counts, for measuring ``transform = "log1p"`` (docs/encoding.md).

Three integer count columns drawn as Criteo's I1-I13 look: a Pareto tail (``floor(U ** (-1 / alpha)) - 1``,
alpha 0.7 to 0.9, capped at 10^5), so the median is 0 or 1, the 99th percentile some hundreds and the largest
values 10^4-10^5; two categorical columns (a site of 200 values, a device of 4), each with a small effect. The
click's log-odds add ``--link``'s function of each count to the categorical effects, centred to a click rate of
about 3 %:

* ``log``: 0.5 log(1 + count) per count (what ``log1p`` makes linear);
* ``raw``: the count itself, scaled by its column's 99th percentile and capped at 4 (the control: a click that
  rises with the raw count, where standardising the raw value is already the right shape near most rows).

Every row is at position 1 (the log serves a position-blind ``esmm``), a click converts with probability 0.1.

    PYTHONPATH=. python reports/count_transform_log.py --link log --seed 0 --rows 80000 --out log.parquet
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

COUNT_TAILS = {"views_7d": 0.7, "clicks_30d": 0.8, "sessions_30d": 0.9}  # column -> Pareto alpha
LARGEST_COUNT = 100_000
TARGET_LOGIT = np.log(0.03 / 0.97)  # a 3 % click rate
CONVERSION_RATE = 0.1


def counts(rng: np.random.Generator, alpha: float, rows: int) -> np.ndarray:
    """Pareto-tailed whole numbers from 0: mostly 0-10, a tail to ``LARGEST_COUNT``."""
    uniform = 1.0 - rng.random(rows)  # (0, 1]: no infinite draw
    return np.minimum(np.floor(uniform ** (-1.0 / alpha)) - 1, LARGEST_COUNT).astype(np.int64)


def count_logit(link: str, count: np.ndarray) -> np.ndarray:
    """One count's part of the click's log-odds."""
    if link == "log":
        return 0.5 * np.log1p(count)
    return np.minimum(count / np.percentile(count, 99), 4.0)


def impression_log(link: str, seed: int, rows: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    site = rng.integers(0, 200, rows)
    device = rng.integers(0, 4, rows)
    logit = rng.normal(0.0, 0.3, 200)[site] + np.array([0.0, 0.2, -0.2, 0.1])[device]
    columns: dict[str, np.ndarray] = {}
    for name, alpha in COUNT_TAILS.items():
        columns[name] = counts(rng, alpha, rows)
        logit = logit + count_logit(link, columns[name])
    logit = logit - logit.mean() + TARGET_LOGIT
    click = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    conversion = click * (rng.random(rows) < CONVERSION_RATE).astype(np.int64)
    return pa.table(
        {
            "request_id": np.arange(rows, dtype=np.int64),
            "ts": np.arange(rows, dtype=np.int64) + 1_700_000_000,
            "site": pa.array([f"site{value}" for value in site]),
            "device": pa.array([f"device{value}" for value in device]),
            **columns,
            "position": np.ones(rows, dtype=np.int64),
            "click": click,
            "conversion": conversion,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--link", choices=["log", "raw"], required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=80_000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = impression_log(args.link, args.seed, args.rows)
    pq.write_table(table, args.out)
    click_rate = np.mean(table.column("click").to_numpy())
    logger.info("%s: %d rows, click rate %.4f", args.out, table.num_rows, click_rate)


if __name__ == "__main__":
    main()
