import numpy as np
import pytest
import torch

from tests.support.model_batches import SPEC, batch
from training.models.esmm import ESMM
from training.models.parts import product_bce
from training.models.settings.esmm import ESMMConfig


def test_outputs_are_named_probabilities_with_pctcvr_the_product():
    model = ESMM(SPEC, ESMMConfig(hidden=[8]))
    data = batch()
    out = model(data["categorical"], data["numeric"])
    assert set(out) == {"pctr", "pcvr", "pctcvr"}
    for value in out.values():
        assert value.shape == (64,)
        assert ((value >= 0) & (value <= 1)).all()
    torch.testing.assert_close(out["pctcvr"], out["pctr"] * out["pcvr"])


def test_loss_is_ctr_bce_plus_ctcvr_bce_over_all_impressions():
    model = ESMM(SPEC, ESMMConfig(hidden=[8]))
    data = batch()
    out = model(data["categorical"], data["numeric"])
    click = data["click"].float()
    ctcvr = click * data["conversion"].float()
    expected = torch.nn.functional.binary_cross_entropy(out["pctr"], click) + torch.nn.functional.binary_cross_entropy(
        out["pctcvr"], ctcvr
    )
    torch.testing.assert_close(model.loss(data), expected, rtol=1e-5, atol=1e-6)


def test_cvr_tower_learns_only_through_the_product():
    """With no click, CVR gets gradient only via pCTCVR: no term fits pCVR on clicked rows alone."""
    model = ESMM(SPEC, ESMMConfig(hidden=[8]))
    data = batch()
    data["conversion"] = torch.zeros_like(data["conversion"])
    model.loss(data).backward()
    assert model.cvr_tower.mlp[0].weight.grad.abs().sum() > 0


def test_esmm_ns_has_a_table_per_tower():
    shared = ESMM(SPEC, ESMMConfig(hidden=[8]))
    separate = ESMM(SPEC, ESMMConfig(hidden=[8], share_embedding=False))
    assert shared.ctr_embedding is shared.cvr_embedding
    assert separate.ctr_embedding is not separate.cvr_embedding


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    model = ESMM(SPEC, ESMMConfig(hidden=[16]))
    data = batch(256)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(data).item()
    for _ in range(50):
        optimizer.zero_grad()
        model.loss(data).backward()
        optimizer.step()
    assert model.loss(data).item() < first * 0.8


def test_metrics_report_cvr_on_clicked_only():
    labels = {"click": np.array([1, 1, 0, 0, 1, 1]), "conversion": np.array([1, 0, 0, 0, 1, 0])}
    predictions = {
        "pctr": np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.6]),
        "pcvr": np.array([0.9, 0.1, 0.99, 0.99, 0.8, 0.2]),  # unclicked rows would spoil the AUC
        "pctcvr": np.array([0.8, 0.1, 0.05, 0.05, 0.6, 0.1]),
    }
    metrics = ESMM.metrics(predictions, labels)
    assert metrics["cvr_auc_clicked"] == 1.0
    assert metrics["ctr_auc"] == 1.0


@pytest.mark.parametrize("kwargs", [{"embedding_dim": 0}, {"hidden": []}, {"dropout": 1.0}])
def test_invalid_configs_say_what_is_wrong(kwargs):
    with pytest.raises(ValueError):
        ESMMConfig(**kwargs)


def test_product_bce_stays_finite_where_both_towers_saturate():
    """pCTR * pCVR rounds to 1 in float32 at large logits; log(1 - p) is then kept finite (p clamped below 1), so a
    saturated row's loss is about 0 for a positive label and large but finite for a negative one, never NaN."""
    logit = torch.tensor([30.0, 30.0])
    loss = product_bce(logit, logit, torch.tensor([1.0, 0.0]))
    positive = product_bce(logit[:1], logit[:1], torch.tensor([1.0]))
    negative = product_bce(logit[1:], logit[1:], torch.tensor([0.0]))
    assert torch.isfinite(loss) and torch.isfinite(positive) and torch.isfinite(negative)
    assert float(positive) < 1e-6
    assert 10.0 < float(negative) < 20.0  # -log(1 - p) at p a float32 step below 1
