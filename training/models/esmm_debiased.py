"""Debiased ESMM: ESMM (Ma et al. 2018) whose CTR tower carries the position bypass and, behind a
lambda, the adversary of Moore et al. 2018 (arXiv 1804.06909).

ESMM's CTR tower, trained on feedback-loop logs, learns the click probability at the *average logged*
position, and its pCTCVR = pCTR * pCVR inherits that regime. Here the CTR logit also sees b, the CTR
of the row's logged position, through the bypass (``position_bypass.py``); the exported graph fixes b
to the position-1 CTR, so the served pCTR and pCTCVR = pCTR(slot 1) * pCVR hold for the top slot.

With ``lam > 0`` the adversary (``adversarial_ctr.Bias``) reads the CTR tower's last hidden layer Z
and tries to recover b; the predicting networks minimise

    Loss_N = (1 - lam) * ESMM loss + lam * Cov(b, b_hat(Z))^2

alternately with Loss_B = mean (b - b_hat)^2 over the adversary only, as the position-debiasing
model does. ``lam = 0`` (the default, and the served setting: on this world the adversary added no
AUC over the bypass, reports/ctr_debias.json) trains the bypass alone with Adam, exactly as ESMM
trains. The adversary is train-only: the exported graph is ESMM's inference path.
"""

from __future__ import annotations

import torch

from common.features import FeatureSpec
from training.fitting.embedding_optimizer import adam
from training.fitting.fit import TrainingPhase, default_phases, descend
from training.fitting.settings import TrainingConfig
from training.models.adversarial_ctr import Bias, squared_covariance
from training.models.esmm import ESMM
from training.models.parts import product_bce
from training.models.settings.adversarial_ctr import AdversarialCTRConfig
from training.models.settings.esmm_debiased import DebiasedESMMConfig


class DebiasedESMM(ESMM):
    """ESMM with the CTR tower's position bypass, and the adversary on its hidden layer when lam > 0."""

    def __init__(self, spec: FeatureSpec, config: DebiasedESMMConfig | None = None) -> None:
        super().__init__(spec, config or DebiasedESMMConfig())
        c = self.config
        adversary = AdversarialCTRConfig(bias_hidden=list(c.bias_hidden))
        self.adversary = Bias(c.hidden[-1], adversary) if c.lam > 0 else None

    def adversarial_losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(Loss_N, Loss_B): the predictors' objective and the adversary's, from one forward pass."""
        categorical, numeric, b = batch["categorical"], batch["numeric"], batch["b"].float()
        ctr_input, cvr_input = self.ctr_embedding(categorical, numeric), self.cvr_embedding(categorical, numeric)
        z = self.ctr_tower.hidden(ctr_input)  # (B, H)
        ctr_logit = self.ctr_tower.head(z) + self.cross(self.ctr_interaction, ctr_input)  # (B,)
        ctr_logit = ctr_logit + self.bypass(b)
        cvr_logit = self.cvr_tower(cvr_input) + self.cross(self.cvr_interaction, cvr_input)  # (B,)
        click = batch["click"].float()
        esmm = torch.nn.functional.binary_cross_entropy_with_logits(ctr_logit, click) + product_bce(
            ctr_logit, cvr_logit, click * batch["conversion"].float()
        )
        lam = self.config.lam
        loss_n = (1.0 - lam) * esmm + lam * squared_covariance(b, self.adversary(z))
        loss_b = ((b - self.adversary(z.detach())) ** 2).mean()
        return loss_n, loss_b

    def training_phases(self, config: TrainingConfig) -> list[TrainingPhase]:
        """ESMM's Adam steps when lam = 0; else alternating Loss_B / Loss_N steps on each minibatch."""
        if self.adversary is None:
            return default_phases(self, config)
        adversary_ids = {id(p) for p in self.adversary.parameters()}
        predictors = [p for p in self.parameters() if id(p) not in adversary_ids]
        adversary = torch.optim.Adam(self.adversary.parameters(), lr=config.learning_rate)
        optimizer = adam(self, predictors, config.learning_rate, config.weight_decay, config.embedding_optimizer)

        def alternating_step(batch: dict[str, torch.Tensor]) -> float:
            descend(adversary, lambda rows: self.adversarial_losses(rows)[1], batch)
            return descend(optimizer, lambda rows: self.adversarial_losses(rows)[0], batch)

        return [TrainingPhase("adversarial", config.epochs, alternating_step)]
