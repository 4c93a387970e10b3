"""Tiny own logs for the validation tests: one a model can only memorise (a user id per row, clicks drawn at a
fixed rate whatever the row), one with a signal it can learn (even ads clicked far more often)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPEC = """
[[feature]]
name = "user"
kind = "categorical"
side = "context"
buckets = 512

[[feature]]
name = "ad"
kind = "categorical"
side = "candidate"
buckets = 16
"""
# many epochs of small batches at a high rate: the user embeddings memorise the training rows' noise
OVERFITTING = """kind = "esmm"
[model]
embedding_dim = 8
hidden = [32]
[training]
epochs = 8
batch_size = 32
learning_rate = 0.03
validation_fraction = 0.3
"""
# the adversarial ctr kind on the noise log over 3 slots: with half its loss the BCE (lam = 0.5) and Adam at 0.03
# it validates best after epoch 1 (ctr_logloss_logged_b 0.603, 0.688 after epoch 2, 2.19 after the last)
ADVERSARIAL_OVERFITTING = OVERFITTING.replace('kind = "esmm"', 'kind = "adversarial_ctr"').replace(
    "hidden = [32]",
    'base_hidden = [16]\nprediction_hidden = [8]\nbias_hidden = [8]\nbias_epochs = 2\nlam = 0.5\noptimizer = "adam"',
)
STEADY = """kind = "esmm"
[model]
embedding_dim = 4
hidden = [16]
[training]
epochs = 3
batch_size = 32
learning_rate = 0.01
validation_fraction = 0.3
"""


def write_log(path: Path, noise: bool, rows: int = 300, slots: int = 1) -> Path:
    """A CSV log in time order, a request a row; pure-noise clicks at 0.3, or 0.6 on even ads and 0.05 on odd.
    ``slots`` > 1 cycles the logged position through 1..slots (a position-aware model needs more than one slot's
    click rate), the clicks drawn as before: no slot is clicked more than another."""
    rng = np.random.default_rng(3)
    lines = ["request_id,ts,user,ad,position,click,conversion"]
    for i in range(rows):
        ad = int(rng.integers(0, 8))
        click = int(rng.random() < (0.3 if noise else 0.6 if ad % 2 == 0 else 0.05))
        conversion = int(click and rng.random() < 0.3)
        lines.append(f"r{i},{1_700_000_000 + i},u{i},{ad},{1 + i % slots},{click},{conversion}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def repository(root: Path, config: str) -> Path:
    """``root/models`` holding model ``m`` with ``config`` and the spec beside it."""
    (root / "models" / "m").mkdir(parents=True)
    (root / "models" / "m" / "config.toml").write_text(config, encoding="utf-8")
    (root / "models" / "m" / "spec.toml").write_text(SPEC, encoding="utf-8")
    return root / "models"
