"""A user's own logs, as tiny as a test can train on: a hand-written CSV of 600 impressions (``write_logs``),
its feature spec (``SPEC_TOML``) and an esmm config.toml that trains on it in a second or so (``CONFIG_TOML``)."""

from __future__ import annotations

import numpy as np

SPEC_TOML = """
[[feature]]
name = "site"
kind = "categorical"
side = "context"
buckets = 16

[[feature]]
name = "creative"
kind = "categorical"
side = "candidate"
buckets = 64

[[feature]]
name = "bid"
kind = "numeric"
side = "candidate"

[[feature]]
name = "weekday"
kind = "categorical"
side = "context"
buckets = 8
required = false
"""

CONFIG_TOML = """
kind = "esmm"
[model]
embedding_dim = 4
hidden = [16, 8]
[training]
epochs = 3
batch_size = 64
learning_rate = 0.01
validation_fraction = 0.2
"""


def write_logs(path, rows: int = 600) -> None:
    """Creatives 0-9; even creatives are clicked far more often, creative 0 converts most."""
    rng = np.random.default_rng(7)
    lines = ["request_id,ts,site,creative,bid,position,click,conversion"]
    for i in range(rows):
        creative = int(rng.integers(0, 10))
        click = int(rng.random() < (0.6 if creative % 2 == 0 else 0.05))
        conversion = int(click and rng.random() < (0.8 if creative == 0 else 0.1))
        lines.append(
            f"r{i // 3},{1700000000 + i},s{i % 4},{creative},{rng.uniform(0.1, 2):.3f},{i % 3 + 1},{click},{conversion}"
        )
    path.write_text("\n".join(lines) + "\n")
