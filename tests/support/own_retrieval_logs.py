"""A user's own retrieval logs, as tiny as a test can train on: a displayed log and a non-displayed table as
Parquet files with their feature spec (``write_pair``), and an esam config.toml that trains on them in seconds
(``CONFIG_TOML``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SPEC_TOML = """
[[feature]]
name = "sku"
kind = "categorical"
side = "candidate"
buckets = 64

[[feature]]
name = "site"
kind = "categorical"
side = "context"
buckets = 8

[[feature]]
name = "brand"
kind = "categorical"
side = "candidate"
buckets = 16

[[feature]]
name = "price"
kind = "numeric"
side = "candidate"
"""

CONFIG_TOML = """
kind = "esam"
[model]
feature_dim = 4
hidden = [8]
embedding_dim = 4
lambda_da = 1.0
lambda_dc_c = 0.01
lambda_dc_p = 0.3
[training]
epochs = 2
batch_size = 16
validation_fraction = 0.25
[queries]
n_targets = 3
"""


def write_pair(directory: Path) -> tuple[Path, Path, Path]:
    """40 requests showing 2 or 3 of 20 SKUs (brand b0/b1 clicked on sites s0/s1), 10 other SKUs never shown."""
    rng = np.random.default_rng(0)
    rows: dict[str, list] = {k: [] for k in ("request_id", "ts", "site", "sku", "brand", "price", "position")}
    rows |= {"click": [], "conversion": []}
    for r in range(40):
        site = f"s{r % 4}"
        for position, sku in enumerate(rng.choice(20, size=2 + r % 2, replace=False), start=1):
            brand = f"b{sku % 4}"
            rows["request_id"].append(f"r{r}")
            rows["ts"].append(r)
            rows["site"].append(site)
            rows["sku"].append(f"k{sku}")
            rows["brand"].append(brand)
            rows["price"].append(float(5 + sku))
            rows["position"].append(position)
            rows["click"].append(int(brand[1] == site[1] and position < 3))
            rows["conversion"].append(0)
    displayed = directory / "displayed.parquet"
    pq.write_table(pa.table(rows), displayed)
    other = directory / "non_displayed.parquet"
    skus = list(range(20, 30))
    pq.write_table(
        pa.table(
            {
                "request_id": [f"r{i}" for i in range(10)],
                "sku": [f"k{s}" for s in skus],
                "brand": [f"b{s % 4}" for s in skus],
                "price": [float(5 + s) for s in skus],
            }
        ),
        other,
    )
    spec = directory / "spec.toml"
    spec.write_text(SPEC_TOML)
    return displayed, other, spec
