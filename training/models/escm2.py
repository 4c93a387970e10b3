"""ESCM²: Entire Space Counterfactual Multi-task Model (Wang et al. 2022, SIGIR, arXiv 2204.05125),
in its IPS and doubly-robust forms (the DR form is Zhang et al. 2020's Multi-DR with ESMM's risk).

    L = L_CTR + lambda_c * L_CVR^{IPS | DR} + lambda_g * L_CTCVR

L_CTR and L_CTCVR are ESMM's two entire-space losses (the "global risk"); L_CVR is the
counterfactual CVR risk, an estimate over all impressions built from clicked ones:

- IPS: ``ips_cvr.py``'s (1 / N) * sum o * e / p, with e = BCE(r, pCVR) and p the detached pCTR.
- DR: an imputation tower predicts, for every impression, the conversion probability s, hence the
  error the CVR tower would make there, e_hat = BCE(s, pCVR) with s held fixed. Then

      L_CVR^DR = (1 / N) * sum_i [ e_hat_i + o_i * (e_i - e_hat_i) / p_i ]

  is unbiased if either p or e_hat is right, and it gives the CVR tower a gradient on unclicked
  impressions (through e_hat) where IPS gives none. How the imputation s is learned (``imputation``):
  - "direct" (default): a direct-method conversion model with its own embedding table, fitted by
    BCE(conversion, s) on the clicked rows, unweighted. Its input (its own representation) and its
    target (the label, not the IPS-weighted error) are independent of the IPS term, so the two
    halves of DR can err differently, which is what DR needs to gain over IPS.
  - "error" (the earlier control): fitted alongside (DR joint learning, Wang et al. 2019) to the
    observed errors, L_imp = (1 / N) * sum_i o_i * (e_i - e_hat_i)^2 / p_i with pCVR held fixed, on a
    detached copy of the shared embedding: the same clicked rows and weights as the IPS term, so DR
    collapses onto IPS.

The imputation tower is train-only: ``forward`` (the exported inference path) is ESMM's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.features import FeatureSpec
from training.models.ips_cvr import IPSCVR, ips_mean
from training.models.parts import FeatureEmbedding, Tower, product_bce
from training.models.settings.escm2 import ESCM2Config


class ESCM2(IPSCVR):
    """ESMM's towers and risks plus a counterfactual CVR risk; DR adds a train-only imputation tower."""

    def __init__(self, spec: FeatureSpec, config: ESCM2Config | None = None) -> None:
        super().__init__(spec, config or ESCM2Config())
        c = self.config
        if c.estimator == "dr":
            direct = c.imputation == "direct"
            self.imputation_embedding = FeatureEmbedding(spec, c.embedding_dim) if direct else None
            self.imputation_tower = Tower(self.ctr_embedding.out_features, c.hidden, c.dropout)

    def doubly_robust_risk(
        self, batch: dict[str, torch.Tensor], ctr_logit: torch.Tensor, cvr_logit: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_CVR^DR, L_imp): the CVR tower's risk and the imputation tower's loss."""
        c = self.config
        weights = self.click_weights(batch, ctr_logit)  # (B,) o / p
        categorical, numeric = batch["categorical"], batch["numeric"]
        if self.imputation_embedding is not None:  # direct method: own representation, the label as target
            imputed_logit = self.imputation_tower(self.imputation_embedding(categorical, numeric))  # (B,)
            imputed = torch.sigmoid(imputed_logit)
        else:
            imputed = torch.sigmoid(self.imputation_tower(self.cvr_embedding(categorical, numeric).detach()))
        error = F.binary_cross_entropy_with_logits(cvr_logit, batch["conversion"].float(), reduction="none")
        imputed_error = F.binary_cross_entropy_with_logits(cvr_logit, imputed.detach(), reduction="none")
        risk = imputed_error.mean() + ips_mean(error - imputed_error, weights, c.self_normalize)
        if self.imputation_embedding is not None:
            click = batch["click"].float()
            fit = F.binary_cross_entropy_with_logits(imputed_logit, batch["conversion"].float(), reduction="none")
            return risk, (click * fit).sum() / click.sum().clamp(min=1.0)
        # the imputation tower learns the observed error, the CVR tower held fixed
        log_p, log_not_p = F.logsigmoid(cvr_logit.detach()), F.logsigmoid(-cvr_logit.detach())  # (B,)
        imputation_fit = -(imputed * log_p + (1.0 - imputed) * log_not_p)  # BCE(s, pCVR), gradient to s only
        imputation_loss = ips_mean((error.detach() - imputation_fit) ** 2, weights, c.self_normalize)
        return risk, imputation_loss

    def fix_constants(self, tensors: dict[str, torch.Tensor]) -> None:
        super().fix_constants(tensors)
        if self.config.estimator == "dr":  # the imputed conversion probability starts at the clicked CVR
            self.imputation_tower.start_at(float(self.cvr_tower.mlp[-1].bias.detach()))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ctr_logit, cvr_logit = self.batch_logits(batch)
        click = batch["click"].float()
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, click)
        ctcvr_loss = product_bce(ctr_logit, cvr_logit, click * batch["conversion"].float())
        if self.config.estimator == "dr":
            cvr_risk, imputation_loss = self.doubly_robust_risk(batch, ctr_logit, cvr_logit)
        else:
            cvr_risk, imputation_loss = self.cvr_risk(batch, ctr_logit, cvr_logit), torch.zeros(())
        c = self.config
        return ctr_loss + c.cvr_weight * cvr_risk + c.ctcvr_weight * ctcvr_loss + imputation_loss
