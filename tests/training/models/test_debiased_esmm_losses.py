"""The debiased ESMM's two adversarial losses by hand: Loss_N is (1 - lam) times ESMM's loss at each row's logged
position CTR b (through the bypass) plus lam times Cov(b, b_hat)^2, and Loss_B is mean (b - b_hat)^2."""

from __future__ import annotations

import torch

from tests.support.debiased_esmm import SMALL
from tests.support.model_batches import SPEC, logged_batch
from training.models.adversarial_ctr import squared_covariance
from training.models.esmm import ESMM
from training.models.esmm_debiased import DebiasedESMM
from training.models.settings.esmm_debiased import DebiasedESMMConfig


def test_loss_n_is_esmm_s_loss_at_the_logged_position_plus_the_weighted_penalty():
    """With lam > 0 the CTR logit still carries the bypass at each row's b: without it the bypass never trains
    and the served "slot-1" pCTR is the average logged slot's, with nothing else failing."""
    torch.manual_seed(0)
    lam = 0.3
    model = DebiasedESMM(SPEC, DebiasedESMMConfig(lam=lam, **SMALL))
    data = logged_batch()
    model.fix_constants(data)
    with torch.no_grad():  # a bypass term far from 0 and a penalty near 1, so that each moves the loss visibly
        model.bypass.w_by.weight.fill_(2.0)
        model.adversary.out.weight.mul_(1000.0)
    model.eval()
    b = data["b"].float()
    b_hat = model.adversary(model.ctr_tower.hidden(model.ctr_embedding(data["categorical"], data["numeric"])))
    expected_n = (1 - lam) * ESMM.loss(model, data) + lam * squared_covariance(b, b_hat)
    expected_b = ((b - b_hat) ** 2).mean()
    assert squared_covariance(b, b_hat).item() > 0.01
    loss_n, loss_b = model.adversarial_losses(data)
    torch.testing.assert_close(loss_n, expected_n)
    torch.testing.assert_close(loss_b, expected_b)
    assert torch.autograd.grad(loss_n, model.bypass.w_by.weight)[0].abs().sum() > 0  # the bypass learns from it
