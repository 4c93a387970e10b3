"""Training a retrieval (two-tower) repository model on the world's retrieval view.

``ctr train esam`` lands here: the config's [world] and [retrieval] tables build the view, its
[queries] table says how many training queries, non-displayed items per query and which seed; the
checkpoint carries the catalog (every world ad's raw features) so that ``ctr export`` stores its
item embeddings beside the towers. The held-out retrieval metrics go into model.json.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.features import FeatureSpec
from common.path_text import path_text
from training.config_world import retrieval_view_of
from training.evaluation.retrieval_metrics import retrieval_metrics
from training.evaluation.world_heldout import version_record
from training.fitting.checkpoint import TRAINED_UNDER, Checkpoint, trained_under
from training.fitting.fit import fit, training_rows_words, validation_cut
from training.logs.label_checks import refuse_one_class
from training.model_config import ModelConfig
from training.models.registry import build_model
from training.pipeline import warn_if_small
from training.retrieval_data import build_retrieval_data, encode_queries
from training.world.retrieval import RetrievalView

logger = logging.getLogger(__name__)
EVALUATION_SEED = 3_000_000  # `ctr evaluate`'s queries: neither the training nor model.json's held-out ones


@torch.no_grad()
def catalog_scores(
    model: torch.nn.Module, query: tuple[np.ndarray, np.ndarray], items: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """(Q, A) v_q . v_d of encoded queries against encoded catalog items (the ranking of S)."""
    model.eval()
    v_q = model.query_tower(*(torch.from_numpy(a) for a in query)).numpy()
    v_d = model.item_tower(*(torch.from_numpy(a) for a in items)).numpy()
    return v_q @ v_d.T


def train_retrieval(
    config: ModelConfig,
    progress: bool = True,
    logs: tuple[Path, Path, Path] | None = None,
) -> Checkpoint:
    """Train on the world's retrieval view, or on ``logs`` = (displayed log, non-displayed table, spec)."""
    if logs is not None:
        return _train_on_logs(config, *logs, progress=progress)
    queries_config = config.queries
    view = retrieval_view_of(config)
    seed = queries_config.seed
    queries = view.queries(queries_config.train_queries, seed)
    data = build_retrieval_data(view, queries, view.expose(queries, seed), queries_config.n_targets, seed)
    logger.info(
        "training %s (%s) on %d queries, %d displayed items (%s world)",
        config.name,
        config.kind,
        len(queries),
        int(data.displayed.sum()),
        view.config.world,
    )
    model = build_model(config.kind, data.spec, config.model, seed=config.training.seed)  # reproducible init
    metrics = fit(model, data.tensors, config.training, progress=progress)
    held_out = view.queries(queries_config.eval_queries, 1_000_000 + seed)
    encoded = encode_queries(data.spec, view, held_out)
    scores = catalog_scores(
        model, (encoded.categorical, encoded.numeric), (data.catalog.categorical, data.catalog.numeric)
    )
    for group, values in retrieval_metrics(scores, view.relevant_items(held_out), item_groups(view)).items():
        metrics.update({f"{group}_{name}": value for name, value in values.items()})
    return Checkpoint.trained(
        config,
        data.spec,
        model,
        metrics,
        fingerprint=f"world:{config.world}|retrieval:{asdict(view.config)}|queries:{asdict(queries_config)}",
        training={"queries": len(queries), TRAINED_UNDER: trained_under(config, simulated=True)},
        catalog={name: column.tolist() for name, column in view.item_columns().items()},
        catalog_id="ad_id",
    )


def _train_on_logs(config: ModelConfig, displayed: Path, other: Path, spec_path: Path, progress: bool) -> Checkpoint:
    """Train on a user's displayed log and non-displayed table; model.json gets the click metrics only
    (logs carry no true relevance, so there is no recall to report)."""
    from training.logs.retrieval_logs import build_log_data

    spec = FeatureSpec.from_toml(spec_path)
    data = build_log_data(displayed, other, spec, config.queries.n_targets, config.queries.seed)
    logger.info(
        "training %s (%s) on %d logged requests from %s", config.name, config.kind, len(data.tensors), displayed
    )
    fraction = config.training.validation_fraction
    cut = validation_cut(len(data.tensors), fraction)  # the requests the model learns from, as the impression models'
    tensors = data.tensors.tensors
    training_clicks, training_items = int(tensors["click"][:cut].sum()), int(tensors["item_mask"][:cut].sum())
    refuse_one_class(displayed, training_clicks, training_items, f"{training_rows_words(fraction)} of")  # no padding
    warn_if_small(config.name, config.training, len(data.tensors), training_clicks, rows_are="requests")
    model = build_model(config.kind, data.spec, config.model, seed=config.training.seed)  # reproducible init
    metrics = fit(model, data.tensors, config.training, progress=progress)
    training = {
        "queries": len(data.tensors),
        "logs": path_text(displayed),
        TRAINED_UNDER: trained_under(config, simulated=False),
    }
    return Checkpoint.trained(
        config, data.spec, model, metrics, data.fingerprint, training, catalog=data.catalog, catalog_id=data.catalog_id
    )


def item_groups(view: RetrievalView) -> dict[str, np.ndarray]:
    return {"all": np.ones(view.n_items, dtype=bool), "hot": view.hot, "long_tail": ~view.hot}


def evaluate_retrieval(root: Path, name: str, version: int | None = None) -> dict[str, Any]:
    """``ctr evaluate`` of a retrieval model, as served: the exported query tower (ONNX Runtime) on
    fresh held-out queries of the config's world, ranked against the stored catalog embeddings, scored
    against the world's true relevance for all, hot and long-tail items; the version is loaded by the
    service's own loader (training/evaluation/served_version.py)."""
    from training.evaluation.served_version import exported_version, retrieval_model

    version = exported_version(root, name, version)
    model = retrieval_model(root, name, version)
    config = ModelConfig.load(root, name)
    queries_config = config.queries
    view = retrieval_view_of(config)
    queries = view.queries(queries_config.eval_queries, EVALUATION_SEED + queries_config.seed)
    encoded = model.query.encoder.encode(view.query_columns(queries), len(queries))
    v_q = model.query.embed(encoded.as_inputs())  # (Q, L)
    embeddings, ids = model.embeddings, model.ids  # (N, L) and (N,): what the service ranks
    index = {item: i for i, item in enumerate(view.item_columns()["ad_id"].tolist())}
    if sorted(index) != sorted(ids.tolist()):
        raise ValueError(f"{name} version {version}: its catalog is not this world's catalog of {view.n_items} ads")
    scores = np.empty((len(queries), view.n_items), dtype=np.float32)
    scores[:, [index[item] for item in ids.tolist()]] = v_q @ embeddings.T  # (Q, A) in world item order
    groups = item_groups(view)
    report: dict[str, Any] = {
        **version_record(model.manifest),  # "esam v1" is another model on each machine; its sha256 is not
        "world": view.config.world,
        "n_queries": len(queries),
        "loss_weights": {w: config.model.get(w) for w in ("lambda_da", "lambda_dc_c", "lambda_dc_p")},
        "split": f"hot: {int(view.hot.sum())} most popular items; long_tail: {int((~view.hot).sum())}",
    }
    return report | retrieval_metrics(scores, view.relevant_items(queries), groups)
