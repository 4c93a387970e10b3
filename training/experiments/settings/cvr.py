"""``ctr experiment cvr``'s settings: the methods compared (each a repository model and the overrides of its row),
the experiment's sizes and schedule, and each method's kind and [model] as it runs, read from the repository.

Nothing here imports torch (~2 s of CPU), so that ``ctr experiment cvr`` says an unknown method or held-out
policy, or a method whose model config is missing or malformed, before that import (training/experiments/cvr.py
runs the experiment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.model_config import ModelConfig

# Table 2's rows, in its order, then the successors, position-blind as published, then the
# position-aware forms: label -> (repository model name, [model] overrides).
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "BASE": ("cvr_base", {}),
    "AMAN": ("cvr_aman", {}),
    "OVERSAMPLING": ("cvr_oversampling", {}),
    "DIVISION": ("division", {}),
    "ESMM-NS": ("esmm_ns", {}),
    "ESMM": ("esmm_blind", {}),
    "IPS-CVR": ("ips_cvr", {"position_bypass": False}),
    "ESCM2-IPS": ("escm2_ips", {"position_bypass": False}),
    "ESCM2-DR": ("escm2_dr", {"position_bypass": False, "imputation": "error"}),
    # the CTR tower sees position through the bypass; served at slot 1; propensity P(click | x, position)
    # (without the served interaction term, as these rows were measured: docs/cvr.md)
    "ESMM debiased": ("esmm", {"interaction": False}),
    "ESMM debiased, adversary 0.99": ("esmm", {"lam": 0.99, "interaction": False}),
    "IPS-CVR pos.": ("ips_cvr", {}),
    "ESCM2-IPS pos.": ("escm2_ips", {}),
    "ESCM2-DR pos., error imputation": ("escm2_dr", {"imputation": "error"}),
    "ESCM2-DR pos.": ("escm2_dr", {}),
    "ESCM2-DR oracle propensity": ("escm2_dr", {"propensity": "oracle"}),
}
# Controls that only ``--method`` runs (not part of the default table): how much of the IPS / DR bias is
# the propensity floor (0.01 in the configs: weights <= 100), with the true propensity and the learned one
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "ESCM2-DR oracle propensity, floor 0.001": ("escm2_dr", {"propensity": "oracle", "propensity_floor": 0.001}),
    "ESCM2-DR oracle propensity, floor 0.0001": ("escm2_dr", {"propensity": "oracle", "propensity_floor": 0.0001}),
    "ESCM2-DR pos., floor 0.001": ("escm2_dr", {"propensity_floor": 0.001}),
}
SMALL_WORLD = {"n_users": 1_000, "n_ads": 300, "n_advertisers": 100}  # ids seen often enough to learn


@dataclass
class CVRExperimentConfig:
    seeds: int = 5  # repetitions: seed s simulates its own logs and held-out day and initialises models
    days: int = 3  # days of feedback-loop training logs; the next day is held out
    requests_per_day: int = 20_000  # ad requests a day (n_slots impressions each)
    heldout_policy: str = "feedback"  # "feedback": the loop's next day; "uniform": a random-display day
    heldout_requests: int = 20_000  # requests of the held-out day when it is "uniform"
    embedding_dim: int = 8  # every method's sizes (the served configs keep the paper's)
    hidden: list[int] = field(default_factory=lambda: [128, 64])  # each tower's MLP
    epochs: int = 2  # passes over the training logs, the same for every method
    batch_size: int = 1024  # impressions per minibatch
    learning_rate: float = 0.002  # Adam
    torch_threads: int = 1  # intra-op threads; on a small shared CPU more threads only contend
    world: dict[str, Any] = field(default_factory=lambda: dict(SMALL_WORLD))  # WorldConfig overrides
    methods: list[str] = field(default_factory=lambda: list(METHODS))  # labels of METHODS or ABLATIONS

    def __post_init__(self) -> None:
        if self.heldout_policy not in ("feedback", "uniform"):
            raise ValueError(f"heldout_policy must be 'feedback' or 'uniform', not {self.heldout_policy!r}")
        if self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, not {self.torch_threads}")
        if self.seeds < 1 or self.days < 1 or self.requests_per_day < 1 or self.heldout_requests < 1:
            raise ValueError("seeds, days, requests_per_day and heldout_requests must be >= 1")
        unknown = set(self.methods) - set(METHODS) - set(ABLATIONS)
        if unknown or not self.methods:
            known = [*METHODS, *ABLATIONS]
            raise ValueError(f"methods must be among {known}, not {sorted(unknown) or self.methods}")

    @classmethod
    def quick(cls) -> CVRExperimentConfig:
        """A minute-scale run for tests: a small world, little traffic, tiny towers, two seeds."""
        return cls(
            seeds=2,
            days=1,
            requests_per_day=2_000,
            heldout_requests=2_000,
            embedding_dim=4,
            hidden=[8],
            epochs=1,
            learning_rate=0.003,
        )


def method_params(root: Path, label: str, config: CVRExperimentConfig) -> tuple[str, dict[str, Any]]:
    """(kind, [model] settings) of the method ``label``: its repository model's, overridden as the
    row says, with the experiment's sizes."""
    name, overrides = (METHODS | ABLATIONS)[label]
    model_config = ModelConfig.load(root, name)
    sizes = {"embedding_dim": config.embedding_dim, "hidden": list(config.hidden)}
    return model_config.kind, {**model_config.model, **overrides, **sizes}


def method_models(root: Path, config: CVRExperimentConfig) -> dict[str, dict[str, Any]]:
    """What each method of ``config`` runs as, by label: its kind and [model] (``method_params``); the error of the
    first method whose model config in ``root`` is missing or malformed."""
    return {
        label: dict(zip(("kind", "model"), method_params(root, label, config), strict=True)) for label in config.methods
    }
