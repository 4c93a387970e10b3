"""A repository model's committed ``config.toml``, parsed into typed sections and checked as it loads.

```toml
kind = "esmm"
evaluation = "world"  # optional: which `ctr evaluate` report (EVALUATIONS; the kind's own by default)
[model]     # the kind's settings dataclass (training/models/settings/, e.g. ESMMConfig)
[training]  # TrainingConfig (training/fitting/settings.py)
[data]      # which logs: the built-in world simulator's settings when no --logs is given
[world]     # WorldConfig overrides for the simulator
[queries]   # a retrieval model's training queries (QueriesConfig)
[retrieval] # RetrievalConfig overrides for the world's retrieval view
[serving]   # read by the service (batch size, queue delay, ...), which checks its keys itself
```
Every key and value is checked when the file loads (common/config_table.py): a misspelt section,
key or value was dropped, or failed after the logs had been simulated or read (``[model] hiden``
came after 1M impressions and 26 MB had been written). Nothing here imports torch, so ``ctr train`` and
``ctr evaluate`` check the whole file before that import (~2 s of CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from common.config_layout import read_checked_config
from common.config_table import UnknownKeys, built
from common.repository import CONFIG_FILE, read_config
from training.config_world import retrieval_config, world_config
from training.fitting.settings import TrainingConfig
from training.models.kinds import MODEL_KINDS, config_kind, default_evaluation, model_config_of
from training.world.config import POLICIES

# What `ctr evaluate NAME` runs, by the config's `evaluation` key: "module:function" of (root, name, version)
EVALUATIONS = {
    "world": "training.evaluation.world_heldout:evaluate_on_world",
    "position_debias": "training.evaluation.position_debias:evaluate_position_debiasing",
    "retrieval": "training.retrieval_pipeline:evaluate_retrieval",
}


@dataclass
class DataConfig:
    days: int = 5  # days of feedback-loop logs the world simulates for training
    requests_per_day: int = 40_000  # ad requests per simulated day (n_slots impressions each)
    policy: str = "feedback"  # the logging policy of the training logs
    seed: int = 1  # the simulation's seed (the world itself is seeded by [world] seed)
    heldout_requests: int = 40_000  # requests in the evaluation's held-out day
    heldout_policy: str = "uniform"  # uniformly random display: an unbiased held-out set
    heldout_seed: int = 1_000_003  # distinct from the training days

    def training_logs(self) -> dict[str, Any]:
        """The settings that make the simulated training logs (the heldout_* ones make only the held-out day)."""
        return {"days": self.days, "requests_per_day": self.requests_per_day, "policy": self.policy, "seed": self.seed}

    def __post_init__(self) -> None:
        if self.days < 1 or self.requests_per_day < 1 or self.heldout_requests < 1:
            raise ValueError("[data] days, requests_per_day and heldout_requests must be >= 1")
        if self.heldout_seed == self.seed:  # the held-out day is day 0 of its seed: the first training day, request
            raise ValueError(  # for request (5,004 of 20,000 impressions identical, clicks included)
                f"[data] heldout_seed = seed = {self.seed}: the held-out day would be the first training day's "
                "requests; give it a seed of its own"
            )
        for key in ("policy", "heldout_policy"):  # a typo failed once simulating, or only in `ctr evaluate`
            if getattr(self, key) not in POLICIES:
                raise ValueError(f"[data] {key} = {getattr(self, key)!r}: expected one of {', '.join(POLICIES)}")


@dataclass
class QueriesConfig:
    """A retrieval model's [data]: the world's queries it trains and is measured on."""

    train_queries: int = 16_000  # training queries (n_slots displayed items each)
    eval_queries: int = 2_000  # held-out queries for the retrieval metrics in model.json
    n_targets: int = 10  # non-displayed items sampled per training query
    seed: int = 1  # queries, exposure and non-displayed samples

    def __post_init__(self) -> None:
        if min(self.train_queries, self.eval_queries, self.n_targets) < 1:
            raise ValueError("[queries] train_queries, eval_queries and n_targets must be >= 1")


@dataclass
class ModelConfig:
    name: str
    kind: str
    model: dict[str, Any] = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    world: dict[str, Any] = field(default_factory=dict)  # overrides; training/config_world.py builds the world
    queries: QueriesConfig = field(default_factory=QueriesConfig)
    retrieval: dict[str, Any] = field(default_factory=dict)  # overrides; training/config_world.py builds the view
    serving: dict[str, Any] = field(default_factory=dict)
    evaluation: str = "world"  # what `ctr evaluate` runs: a key of EVALUATIONS

    @classmethod
    def load(cls, root: Path, name: str) -> ModelConfig:
        """The config of model ``name``; ValueError naming the first key or value that is not one it takes."""
        path = root / name / CONFIG_FILE
        try:
            raw = read_checked_config(root, name)
        except UnknownKeys as error:  # a table's setting written above every header: "unknown", no table named
            placed = _tables_taking(error.unknown, read_config(root, name).get("kind"))
            if not placed:
                raise
            said = "; ".join(f"{key} is a {table} setting: write it under {table}" for key, table in placed.items())
            raise ValueError(f"{error} ({said})") from None
        kind = config_kind(raw, path)
        evaluation = raw.get("evaluation", default_evaluation(kind))
        if evaluation not in EVALUATIONS:
            raise ValueError(
                f"unknown evaluation {evaluation!r}: set evaluation in {path} to one of {sorted(EVALUATIONS)}"
            )
        model_config_of(kind, raw.get("model", {}))  # before any log is read or simulated
        world, retrieval = raw.get("world", {}), raw.get("retrieval", {})
        world_config(world)  # checked here; kept as read, the overrides of the defaults
        retrieval_config(retrieval)
        return cls(
            name=name,
            kind=kind,
            model=raw.get("model", {}),
            training=built(TrainingConfig, raw.get("training", {}), "[training]"),
            data=built(DataConfig, raw.get("data", {}), "[data]"),
            world=world,
            queries=built(QueriesConfig, raw.get("queries", {}), "[queries]"),
            retrieval=retrieval,
            serving=raw.get("serving", {}),
            evaluation=evaluation,
        )


def _tables_taking(names: list[str], kind: Any) -> dict[str, str]:
    """Each of ``names`` that a table of the config takes, with the first such table (``[training]``, ``[data]``,
    ``[queries]``, then the ``[model]`` of ``kind`` where it is a known kind)."""
    tables: dict[str, type] = {"[training]": TrainingConfig, "[data]": DataConfig, "[queries]": QueriesConfig}
    if isinstance(kind, str) and kind in MODEL_KINDS:
        tables["[model]"] = MODEL_KINDS[kind].settings
    taken = {table: {f.name for f in fields(settings) if f.init} for table, settings in tables.items()}
    placed = {name: next((table for table, keys in taken.items() if name in keys), None) for name in names}
    return {name: table for name, table in placed.items() if table is not None}
