"""Retrieval training data from the world's retrieval view, grouped by query, for two-tower models.

One row per query: its features, its S displayed items with their clicks (the source domain) and T
items sampled uniformly from the catalog items never displayed in these logs (the target domain; the
same items may serve several queries). Items are encoded once for the whole catalog and gathered, so
the tensors are

    query_categorical (Q, Cq)  query_numeric (Q, Nq)
    item_categorical (Q, S, Ci)  item_numeric (Q, S, Ni)  click (Q, S)
    target_categorical (Q, T, Ci)  target_numeric (Q, T, Ni)

each side encoded with its own part of the spec (``FeatureSpec.for_side``), as its tower is exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from common.encoder import EncodedFeatures, FeatureEncoder, fit_statistics
from common.features import FeatureSpec
from training.fitting.dataset import ImpressionTensors
from training.world.retrieval import Exposure, Queries, RetrievalView


@dataclass(frozen=True)
class RetrievalData:
    spec: FeatureSpec  # fitted: query features (context) and item features (candidate)
    tensors: ImpressionTensors  # grouped by query, as above
    displayed: np.ndarray  # (A,) bool: the item was displayed at least once in these logs
    catalog: EncodedFeatures  # every catalog item, encoded with the item side of ``spec``


def encode_queries(spec: FeatureSpec, view: RetrievalView, queries: Queries) -> EncodedFeatures:
    return FeatureEncoder(spec.for_side("context")).encode(view.query_columns(queries), len(queries))


def encode_catalog(spec: FeatureSpec, view: RetrievalView) -> EncodedFeatures:
    return FeatureEncoder(spec.for_side("candidate")).encode(view.item_columns(), view.n_items)


def build_retrieval_data(
    view: RetrievalView, queries: Queries, exposure: Exposure, n_targets: int, seed: int, targets: bool = True
) -> RetrievalData:
    """Fit the spec's statistics on these logs, encode them and sample ``n_targets`` non-displayed
    items per query (``targets=False``: none, for a model trained on displayed items alone)."""
    if n_targets < 1:
        raise ValueError(f"n_targets must be >= 1, got {n_targets}")
    columns = {**view.query_columns(queries), **view.item_columns(exposure.items)}
    spec = fit_statistics(view.feature_spec(), columns, also_encoded=view.item_columns())  # the catalog too
    displayed = np.bincount(exposure.items.ravel(), minlength=view.n_items) > 0
    query = encode_queries(spec, view, queries)
    catalog = encode_catalog(spec, view)
    tensors = {
        "query_categorical": torch.from_numpy(query.categorical),
        "query_numeric": torch.from_numpy(query.numeric),
        "item_categorical": torch.from_numpy(catalog.categorical[exposure.items]),
        "item_numeric": torch.from_numpy(catalog.numeric[exposure.items]),
        "click": torch.from_numpy(exposure.click.astype(np.int64)),
    }
    if targets:
        sampled = view.sample_non_displayed(displayed, (len(queries), n_targets), seed)  # (Q, T)
        tensors["target_categorical"] = torch.from_numpy(catalog.categorical[sampled])
        tensors["target_numeric"] = torch.from_numpy(catalog.numeric[sampled])
    return RetrievalData(spec, ImpressionTensors(tensors), displayed, catalog)
