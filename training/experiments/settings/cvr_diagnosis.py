"""``ctr experiment cvr-diagnosis``'s settings: its variants (each a setting of the served ``esmm`` model and an
objective) and the run's sizes.

Nothing here imports torch (~2 s of CPU), so that ``ctr experiment cvr-diagnosis`` says an unknown ``--variant``
before that import (training/experiments/cvr_diagnosis.py runs the variants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the served setting before the interaction (docs/cvr.md): every variant but "served" states its own
# setting in full, so that a label keeps its meaning when models/esmm/config.toml changes
BEFORE_MODEL: dict[str, Any] = {"interaction": False}
BEFORE_TRAINING: dict[str, Any] = {"epochs": 1, "learning_rate": 0.001}
INTERACTION = {"interaction": True}
# label -> (model overrides, training overrides, objective); objectives: "esmm", "oracle", "untrained"
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "served": ({}, {}, "esmm"),  # models/esmm/config.toml as it is
    "untrained": (BEFORE_MODEL, BEFORE_TRAINING, "untrained"),
    "before": (BEFORE_MODEL, BEFORE_TRAINING, "esmm"),  # 1 epoch, Adam 0.001, no interaction
    "cvr offset 0": (BEFORE_MODEL, BEFORE_TRAINING, "offset0"),
    "oracle labels": (BEFORE_MODEL, BEFORE_TRAINING, "oracle"),
    "epochs 2": (BEFORE_MODEL, {**BEFORE_TRAINING, "epochs": 2}, "esmm"),
    "epochs 3": (BEFORE_MODEL, {**BEFORE_TRAINING, "epochs": 3}, "esmm"),
    "learning rate 0.003": (BEFORE_MODEL, {**BEFORE_TRAINING, "learning_rate": 0.003}, "esmm"),
    # the towers' explicit user-ad interaction (training/models/interaction.py)
    "interaction": (INTERACTION, BEFORE_TRAINING, "esmm"),
    "interaction, epochs 2": (INTERACTION, {**BEFORE_TRAINING, "epochs": 2}, "esmm"),
    "interaction, epochs 3": (INTERACTION, {**BEFORE_TRAINING, "epochs": 3}, "esmm"),
    "interaction, learning rate 0.003": (INTERACTION, {**BEFORE_TRAINING, "learning_rate": 0.003}, "esmm"),
    "interaction, batch size 1024": (INTERACTION, {**BEFORE_TRAINING, "batch_size": 1024}, "esmm"),
    "interaction, batch size 512": (INTERACTION, {**BEFORE_TRAINING, "batch_size": 512}, "esmm"),
    "interaction, epochs 2, learning rate 0.002": (INTERACTION, {"epochs": 2, "learning_rate": 0.002}, "esmm"),
}


@dataclass
class DiagnosisConfig:
    model: str = "esmm"  # the repository model whose world, logs, sizes and schedule are used
    days: int | None = None  # override the config's [data] days (None: as configured)
    requests_per_day: int | None = None  # override the config's [data] requests_per_day
    heldout_requests: int = 20_000  # requests of the uniformly displayed held-out day
    seeds: list[int] = field(default_factory=lambda: [0])  # training seeds (the logs stay the config's)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))

    def __post_init__(self) -> None:
        unknown = set(self.variants) - set(VARIANTS)
        if unknown or not self.variants:
            raise ValueError(f"variants must be among {list(VARIANTS)}, not {sorted(unknown) or self.variants}")
