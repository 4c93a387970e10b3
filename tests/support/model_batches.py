"""A three-feature spec and random minibatches of it, for the unit tests of the models: the impressions alone
(``batch``), and with the logged positions and their click rates ``b`` that the position-debiased kinds train on
(``world_batch``, ``logged_batch``)."""

from __future__ import annotations

import numpy as np
import torch

from common.features import Feature, FeatureSpec, NumericStats
from training.export import random_inputs
from training.position_ctr import position_ctr_per_row

SPEC = FeatureSpec(
    (
        Feature("user_id", "categorical", "context", buckets=50),
        Feature("ad_id", "categorical", "candidate", buckets=30),
        Feature("ad_price", "numeric", "candidate"),
    ),
    {"ad_price": NumericStats(0.0, 1.0)},
)


def batch(rows: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    inputs = random_inputs(SPEC, rows, seed)
    rng = np.random.default_rng(seed)
    click = rng.integers(0, 2, rows)
    conversion = click * rng.integers(0, 2, rows)
    return {
        "categorical": torch.from_numpy(inputs["categorical"]),
        "numeric": torch.from_numpy(inputs["numeric"]),
        "click": torch.from_numpy(click),
        "conversion": torch.from_numpy(conversion),
    }


def world_batch(rows: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    data = batch(rows, seed)
    position = torch.from_numpy(np.random.default_rng(seed + 100).integers(1, 4, rows))
    data["position"] = position
    data["b"] = torch.from_numpy(position_ctr_per_row(position.numpy(), data["click"].numpy()))
    return data


def logged_batch(rows: int = 256, seed: int = 0) -> dict[str, torch.Tensor]:
    """A minibatch with positions 1..5 and b, each slot clicked less than the one above."""
    data = batch(rows, seed)
    rng = np.random.default_rng(seed)
    position = rng.integers(1, 6, rows)
    click = (rng.random(rows) < 0.6 / position).astype(np.int64)
    data["position"] = torch.from_numpy(position)
    data["click"] = torch.from_numpy(click)
    data["conversion"] = torch.from_numpy(click * rng.integers(0, 2, rows))
    data["b"] = torch.from_numpy(position_ctr_per_row(position, click))
    return data
