"""The towers' explicit user-ad interaction (training/models/interaction.py) in the ESMM family: the term
it adds, that it learns a dot-product world an MLP alone does not in the same steps, and that a debiased
ESMM with it exports with parity and the service's inputs and outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from common.features import Feature, FeatureSpec, NumericStats
from common.repository import read_manifest
from tests.support.debiased_esmm import SMALL, trained_debiased_esmm
from tests.support.model_batches import SPEC
from training.evaluation.metrics import auc
from training.export import PARITY_TOLERANCE, export_checkpoint
from training.fitting.checkpoint import Checkpoint
from training.models.esmm import ESMM
from training.models.interaction import CrossInteraction
from training.models.settings.esmm import ESMMConfig

TWO_SIDES = FeatureSpec(
    (
        Feature("user_id", "categorical", "context", buckets=40),
        Feature("device", "categorical", "context", buckets=3),
        Feature("ad_id", "categorical", "candidate", buckets=30),
        Feature("ad_category", "categorical", "candidate", buckets=5),
        Feature("ad_price", "numeric", "candidate"),
    ),
    {"ad_price": NumericStats(0.0, 1.0)},
)


def test_the_term_is_the_weighted_dot_product_of_the_context_and_candidate_embedding_sums():
    torch.manual_seed(0)
    model = ESMM(TWO_SIDES, ESMMConfig(embedding_dim=4, hidden=[8], interaction=True))
    with torch.no_grad():
        model.cvr_interaction.weight.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
    categorical = torch.tensor([[0, 40, 43, 73], [39, 42, 72, 77]])  # offsets: 0, 40, 43, 73
    numeric = torch.zeros(2, 1)
    table = model.ctr_embedding.table.weight
    user, ad = table[categorical[:, :2]].sum(1), table[categorical[:, 2:]].sum(1)
    embedded = model.cvr_embedding(categorical, numeric)
    expected = (user * ad) @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    torch.testing.assert_close(model.cvr_interaction(embedded), expected)
    _, cvr_logit = model.logits(categorical, numeric)
    torch.testing.assert_close(cvr_logit, model.cvr_tower(embedded) + expected)


def test_off_by_default_and_refused_without_both_sides():
    assert ESMM(SPEC, ESMMConfig(**SMALL)).ctr_interaction is None
    one_side = FeatureSpec((Feature("user_id", "categorical", "context", buckets=5),))
    with pytest.raises(ValueError, match="both the context and candidate side"):
        CrossInteraction(one_side, 4)


def dot_product_world(rows: int, seed: int) -> dict[str, torch.Tensor]:
    """Clicks from sigmoid(3 u.v) of hidden 2-d user and ad vectors: a pure user-ad interaction."""
    rng = np.random.default_rng(seed)
    users, ads = rng.normal(size=(40, 2)), rng.normal(size=(30, 2))
    user, ad = rng.integers(0, 40, rows), rng.integers(0, 30, rows)
    p = 1 / (1 + np.exp(-3 * (users[user] * ads[ad]).sum(1)))
    click = (rng.random(rows) < p).astype(np.int64)
    categorical = np.stack([user, 40 + rng.integers(0, 3, rows), 43 + ad, 73 + ad % 5], axis=1)
    return {
        "categorical": torch.from_numpy(categorical),
        "numeric": torch.zeros(rows, 1),
        "click": torch.from_numpy(click),
        "conversion": torch.from_numpy(click),
        "p": torch.from_numpy(p),
    }


def test_the_interaction_learns_a_dot_product_world_the_mlp_alone_does_not_in_the_same_steps():
    data = dot_product_world(4096, seed=1)
    scores = {}
    for interaction in (False, True):
        torch.manual_seed(0)
        model = ESMM(TWO_SIDES, ESMMConfig(embedding_dim=4, hidden=[16], interaction=interaction))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for step in range(150):
            rows = slice((step % 8) * 512, (step % 8 + 1) * 512)
            optimizer.zero_grad()
            model.loss({k: v[rows] for k, v in data.items()}).backward()
            optimizer.step()
        with torch.no_grad():
            pctr = model(data["categorical"], data["numeric"])["pctr"].numpy()
        scores[interaction] = auc(data["p"].numpy() > 0.5, pctr)
    assert scores[True] > scores[False] + 0.05, scores


def test_debiased_esmm_with_the_interaction_trains_and_exports_with_parity(tmp_path):
    params = {**SMALL, "interaction": True}
    model, data = trained_debiased_esmm(params)  # trains: its loss falls
    checkpoint = Checkpoint(
        name="esmm", kind="esmm_debiased", model_params=params, spec=SPEC, state_dict=model.state_dict()
    )
    export_checkpoint(checkpoint, tmp_path)
    manifest = read_manifest(tmp_path, "esmm", 1)
    assert manifest.metrics["export_parity_max_abs_diff"] <= PARITY_TOLERANCE
    assert [o.name for o in manifest.outputs] == ["pctr", "pcvr", "pctcvr"]
    graph = onnx.load(str(tmp_path / "esmm" / "1" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["categorical", "numeric"]
    with torch.no_grad():
        out = model(data["categorical"], data["numeric"])
    torch.testing.assert_close(out["pctcvr"], out["pctr"] * out["pcvr"])
