"""A repository model's committed ``config.toml``, parsed into typed sections.

```toml
kind = "esmm"
evaluation = "world"  # optional: which `ctr evaluate` report (training.evaluation.EVALUATIONS)
[model]     # the model class's config dataclass (e.g. ESMMConfig)
[training]  # TrainingConfig
[data]      # which logs: the built-in world simulator's settings when no --logs is given
[world]     # WorldConfig overrides for the simulator
[serving]   # read by the service (batch size, queue delay, ...)
```
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from common.repository import read_config
from training.fit import TrainingConfig
from training.world.config import WorldConfig


@dataclass
class DataConfig:
    days: int = 5  # days of feedback-loop logs the world simulates for training
    requests_per_day: int = 40_000  # ad requests per simulated day (n_slots impressions each)
    policy: str = "feedback"  # the logging policy of the training logs
    seed: int = 1  # the simulation's seed (the world itself is seeded by [world] seed)
    heldout_requests: int = 40_000  # requests in the evaluation's held-out day
    heldout_policy: str = "uniform"  # uniformly random display: an unbiased held-out set
    heldout_seed: int = 1_000_003  # distinct from the training days

    def __post_init__(self) -> None:
        if self.days < 1 or self.requests_per_day < 1 or self.heldout_requests < 1:
            raise ValueError("[data] days, requests_per_day and heldout_requests must be >= 1")


@dataclass
class ModelConfig:
    name: str
    kind: str
    model: dict[str, Any] = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    world: dict[str, Any] = field(default_factory=dict)
    serving: dict[str, Any] = field(default_factory=dict)
    evaluation: str = "world"  # what `ctr evaluate` runs: a key of training.evaluation.EVALUATIONS

    @classmethod
    def load(cls, root: Path, name: str) -> ModelConfig:
        try:
            raw = read_config(root, name)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no config for model {name!r}: expected {root / name / 'config.toml'}; "
                f"create it with `ctr new {name} --kind KIND` (or run from the repository root)"
            ) from None
        if "kind" not in raw:
            raise ValueError(f"{root / name / 'config.toml'} must say which kind of model it is (kind = ...)")
        return cls(
            name=name,
            kind=raw["kind"],
            model=raw.get("model", {}),
            training=_section(TrainingConfig, raw, "training"),
            data=_section(DataConfig, raw, "data"),
            world=_known(WorldConfig, raw.get("world", {}), "world"),  # read as WorldConfig(**world) where used
            serving=raw.get("serving", {}),
            evaluation=raw.get("evaluation", "world"),
        )


def _section(config_class: type, raw: dict[str, Any], key: str) -> Any:
    return config_class(**_known(config_class, raw.get(key, {}), key))


def _known(config_class: type, values: dict[str, Any], key: str) -> dict[str, Any]:
    """``values`` when each is a field of ``config_class``; ValueError naming the others and the fields."""
    known = {f.name for f in fields(config_class)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"[{key}] settings {sorted(unknown)} are unknown; known: {sorted(known)}")
    return values
