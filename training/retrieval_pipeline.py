"""Training a retrieval (two-tower) repository model on the world's retrieval view.

``ctr train esam`` lands here: the config's [world] and [retrieval] tables build the view, its
[queries] table says how many training queries, non-displayed items per query and which seed; the
checkpoint carries the catalog (every world ad's raw features) so that ``ctr export`` stores its
item embeddings beside the towers. The held-out retrieval metrics go into model.json.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from common.repository import read_config
from training.checkpoint import Checkpoint
from training.fit import fit
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.retrieval_data import build_retrieval_data, encode_queries
from training.retrieval_metrics import retrieval_metrics
from training.world import World, WorldConfig
from training.world.retrieval import RetrievalConfig, RetrievalView

logger = logging.getLogger(__name__)


@dataclass
class QueriesConfig:
    train_queries: int = 16_000  # training queries (n_slots displayed items each)
    eval_queries: int = 2_000  # held-out queries for the retrieval metrics in model.json
    n_targets: int = 10  # non-displayed items sampled per training query
    seed: int = 1  # queries, exposure and non-displayed samples

    def __post_init__(self) -> None:
        if min(self.train_queries, self.eval_queries, self.n_targets) < 1:
            raise ValueError("[queries] train_queries, eval_queries and n_targets must be >= 1")


def _table(raw: dict, key: str, config_class: type) -> object:
    values = raw.get(key, {})
    unknown = set(values) - {f.name for f in fields(config_class)}
    if unknown:
        raise ValueError(f"[{key}] settings {sorted(unknown)} are unknown")
    return config_class(**values)


@torch.no_grad()
def catalog_scores(
    model: torch.nn.Module, query: tuple[np.ndarray, np.ndarray], items: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """(Q, A) v_q . v_d of encoded queries against encoded catalog items (the ranking of S)."""
    model.eval()
    v_q = model.query_tower(*(torch.from_numpy(a) for a in query)).numpy()
    v_d = model.item_tower(*(torch.from_numpy(a) for a in items)).numpy()
    return v_q @ v_d.T


def train_retrieval(config: ModelConfig, root: Path, work_dir: Path, progress: bool = True) -> Checkpoint:
    raw = read_config(root, config.name)
    queries_config = _table(raw, "queries", QueriesConfig)
    view = RetrievalView(World(WorldConfig(**config.world)), _table(raw, "retrieval", RetrievalConfig))
    seed = queries_config.seed
    queries = view.queries(queries_config.train_queries, seed)
    data = build_retrieval_data(view, queries, view.expose(queries, seed), queries_config.n_targets, seed)
    logger.info(
        "training %s (%s) on %d queries, %d displayed items",
        config.name,
        config.kind,
        len(queries),
        int(data.displayed.sum()),
    )
    model = build_model(config.kind, data.spec, config.model)
    metrics = fit(model, data.tensors, config.training, progress=progress)
    held_out = view.queries(queries_config.eval_queries, 1_000_000 + seed)
    encoded = encode_queries(data.spec, view, held_out)
    scores = catalog_scores(
        model, (encoded.categorical, encoded.numeric), (data.catalog.categorical, data.catalog.numeric)
    )
    groups = {"all": np.ones(view.n_items, dtype=bool), "hot": view.hot, "long_tail": ~view.hot}
    for group, values in retrieval_metrics(scores, view.relevant_items(held_out), groups).items():
        metrics.update({f"{group}_{name}": value for name, value in values.items()})
    catalog = {name: column.tolist() for name, column in view.item_columns().items()}
    checkpoint = Checkpoint(
        name=config.name,
        kind=config.kind,
        model_params=config.model,
        spec=data.spec,
        state_dict=model.state_dict(),
        metrics=metrics,
        data_fingerprint=f"world:{config.world}|retrieval:{asdict(view.config)}|queries:{asdict(queries_config)}",
        training={**asdict(config.training), "queries": len(queries)},
        catalog=catalog,
        catalog_id="ad_id",
    )
    return checkpoint
