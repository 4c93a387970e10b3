"""Requests of the tiny model's features in one table, a row a candidate, as `ctr score` reads them from a file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

REQUEST_SIZES = [1, 3, 7, 40, 2, 33]  # 32 candidates and more are encoded where checked (score/pipeline.py)


def candidates_table(seed: int = 0, sizes: list[int] = REQUEST_SIZES) -> pa.Table:
    """Requests of the tiny model's features as a data scientist's table holds them: an integer column with
    gaps written by pandas (float64 with NaN: ``hour``), an optional numeric feature with nulls, a label."""
    rng = np.random.default_rng(seed)
    request_id = np.repeat(np.arange(len(sizes)), sizes)
    n = request_id.size
    hour = rng.integers(0, 24, n).astype(np.float64)
    hour[rng.random(n) < 0.2] = np.nan
    quality = pa.array([None if q < 0.15 else float(q) for q in rng.random(n)], pa.float64())
    return pa.table(
        {
            "request_id": [f"r{i}" for i in request_id],
            "user_id": [f"u{i}" for i in rng.integers(0, 20, len(sizes))[request_id]],
            "hour": hour,
            "ad_id": rng.integers(0, 500, n),
            "ad_price": rng.lognormal(2.0, 1.0, n),
            "ad_quality": quality,
            "click": rng.integers(0, 2, n),  # not a feature: carried through, as any other column
        }
    )
