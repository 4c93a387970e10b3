"""ESAM's parts: the three domain losses on hand-built embeddings, the towers, the pair scorer."""

from __future__ import annotations

import pytest
import torch

from common.features import Feature, FeatureSpec, NumericStats
from training.models.esam import ESAM, center_clustering, correlation_alignment, self_training
from training.models.settings.esam import ESAMConfig

SPEC = FeatureSpec(
    (
        Feature("user_id", "categorical", "context", buckets=20),
        Feature("ad_id", "categorical", "candidate", buckets=30),
        Feature("query_category", "categorical", "context", buckets=5),
        Feature("ad_price", "numeric", "candidate"),
        Feature("ad_category", "categorical", "candidate", buckets=5),
    ),
    {"ad_price": NumericStats(0.0, 1.0)},
)
SMALL = {"feature_dim": 4, "hidden": [8], "embedding_dim": 6}


def batch(b: int = 4, s: int = 3, t: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "query_categorical": torch.stack(
            [torch.randint(0, 20, (b,), generator=g), torch.randint(20, 25, (b,), generator=g)], 1
        ),
        "query_numeric": torch.zeros(b, 0),
        "item_categorical": torch.stack(
            [torch.randint(0, 30, (b, s), generator=g), torch.randint(30, 35, (b, s), generator=g)], -1
        ),
        "item_numeric": torch.randn(b, s, 1, generator=g),
        "click": torch.randint(0, 2, (b, s), generator=g),
        "target_categorical": torch.stack(
            [torch.randint(0, 30, (b, t), generator=g), torch.randint(30, 35, (b, t), generator=g)], -1
        ),
        "target_numeric": torch.randn(b, t, 1, generator=g),
    }


def test_correlation_alignment_subtracts_the_means() -> None:
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))
    assert correlation_alignment(x, x + 5.0).item() == pytest.approx(0.0, abs=1e-10)  # a shift is no correlation
    assert correlation_alignment(x, 2.0 * x).item() > 0.1
    # (1/L^2) ||Cov_s - Cov_t||_F^2 with Cov_s = I, Cov_t = 4 I exactly
    eye = torch.cat([torch.eye(4), -torch.eye(4)]) * (7**0.5 / 2**0.5)  # 8 rows, covariance I
    assert correlation_alignment(eye, 2 * eye).item() == pytest.approx(4 * 9 / 16, rel=1e-5)


def test_center_clustering_margins() -> None:
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    items = torch.stack([a, a, b, b]).unsqueeze(0)  # (1, 4, 2): two tight, distant clusters
    labels = torch.tensor([[1, 1, 0, 0]])
    assert center_clustering(items, labels, m1=0.1, m2=1.0).item() == pytest.approx(0.0)
    # centers 2 apart (squared); m2 = 3 asks for 3: inter hinge is 1
    assert center_clustering(items, labels, m1=0.1, m2=3.0).item() == pytest.approx(1.0)
    # a mixed cluster: items a and b both labelled 1: each is 0.5 (squared) from their center a/2 + b/2
    mixed = center_clustering(items, torch.tensor([[1, 0, 1, 0]]), m1=0.2, m2=0.0).item()
    assert mixed == pytest.approx(0.5 - 0.2)
    # a query with one label only has no inter-class term
    assert center_clustering(items, torch.ones(1, 4), m1=0.0, m2=4.0).item() == pytest.approx(0.5)


def test_self_training_uses_confident_scores_only() -> None:
    scores = torch.tensor([0.1, 0.5, 0.9])
    expected = -(0.1 * torch.log(torch.tensor(0.1)) + 0.9 * torch.log(torch.tensor(0.9))) / 2
    assert self_training(scores, 0.2, 0.8).item() == pytest.approx(expected.item())
    assert self_training(torch.tensor([0.5, 0.6]), 0.2, 0.8).item() == 0.0


def test_self_training_pushes_a_score_away_from_1_over_e() -> None:
    """Descending -S log S lowers a score below 1/e and raises one above it: why p1 <= 1/e <= p2."""
    scores = torch.tensor([0.01, 0.3, 0.45, 0.9], requires_grad=True)
    self_training(scores, 0.99, 0.999).backward()  # every score counted, whatever the thresholds say
    assert (scores.grad[:2] > 0).all() and (scores.grad[2:] < 0).all()


def test_forward_scores_pairs_with_the_towers() -> None:
    torch.manual_seed(0)
    model = ESAM(SPEC, ESAMConfig(**SMALL)).eval()
    # full-spec rows: user_id, ad_id, query_category, ad_category (offsets 0, 20, 50, 55)
    categorical = torch.tensor([[3, 20 + 7, 50 + 2, 55 + 4]])
    numeric = torch.tensor([[0.5]])
    with torch.no_grad():
        score = model(categorical, numeric)["score"]
        v_q = model.query_tower(torch.tensor([[3, 20 + 2]]), torch.zeros(1, 0))  # side offsets 0, 20
        v_d = model.item_tower(torch.tensor([[7, 30 + 4]]), numeric)  # side offsets 0, 30
    expected = torch.sigmoid(model.config.scale * (v_q * v_d).sum(-1) + model.bias)
    torch.testing.assert_close(score, expected)
    assert torch.linalg.norm(v_q, dim=-1).item() == pytest.approx(1.0, abs=1e-6)


def test_non_displayed_items_learn_only_through_the_domain_losses() -> None:
    data = batch()
    target_rows = data["target_categorical"][..., 0].unique()
    displayed_rows = data["item_categorical"][..., 0].unique()
    only_target = [r for r in target_rows.tolist() if r not in displayed_rows.tolist()]
    assert only_target
    for weights, learns in (({"lambda_da": 0.0, "lambda_dc_c": 0.0, "lambda_dc_p": 0.0}, False), ({}, True)):
        torch.manual_seed(0)
        model = ESAM(SPEC, ESAMConfig(**SMALL, **weights))
        model.loss(data).backward()
        grad = model.item_tower.embedding.table.weight.grad[only_target]
        assert bool(grad.abs().sum() > 0) is learns


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="p1"):
        ESAMConfig(p1=0.9, p2=0.1)
    # thresholds on one side of 1/e: the term would push "confident" scores the other way
    for p1, p2 in ((0.02, 0.3), (0.4, 0.9)):
        with pytest.raises(ValueError, match=r"p1 <= 1/e \(0.368\) <= p2"):
            ESAMConfig(p1=p1, p2=p2)
    with pytest.raises(ValueError, match="m1 and m2"):
        ESAMConfig(m1=5.0)
    with pytest.raises(ValueError, match="lambda"):
        ESAMConfig(lambda_da=-1.0)


def test_padding_items_count_in_no_loss_and_each_term_has_its_own_weight() -> None:
    """A logged request with fewer than S items is padded (``item_mask`` 0): L_s and L_DA are over the displayed
    items alone, by hand; and L = L_s + lambda_dc_c L_DC^c + lambda_da L_DA + lambda_dc_p L_DC^p, each lambda its
    own (the defaults give lambda_da and lambda_dc_p both 3.0, which would hide one standing for the other)."""
    torch.manual_seed(0)
    config = ESAMConfig(lambda_da=2.0, lambda_dc_c=0.5, lambda_dc_p=0.25, **SMALL)
    model = ESAM(SPEC, config)
    data = batch(b=4, s=3, t=5)
    data["item_mask"] = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]])
    real = data["item_mask"].bool()
    terms = model.losses(data)
    v_q = model.query_tower(data["query_categorical"], data["query_numeric"])
    v_s = model.item_tower(data["item_categorical"], data["item_numeric"])
    v_t = model.item_tower(data["target_categorical"], data["target_numeric"])
    logits = model.similarity_logit(v_q, v_s)[real]
    expected_l_s = torch.nn.functional.binary_cross_entropy_with_logits(logits, data["click"][real].float())
    torch.testing.assert_close(terms["l_s"], expected_l_s)
    torch.testing.assert_close(terms["l_da"], correlation_alignment(v_s[real], v_t.flatten(0, 1)))
    expected = (
        terms["l_s"] + 0.5 * terms["l_dc_c"] + 2.0 * terms["l_da"] + 0.25 * terms["l_dc_p"]
    )  # the terms themselves pinned above and by the tests of each
    torch.testing.assert_close(model.loss(data), expected)
    assert terms["l_dc_p"] > 0 and terms["l_da"] > 0
