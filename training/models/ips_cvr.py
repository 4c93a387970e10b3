"""IPS-CVR: the CVR loss on clicked impressions weighted by the inverse propensity 1 / pCTR, with
the model's own CTR tower as the propensity model (Zhang et al. 2020, Multi-IPW; the derivation is
Yuan et al. 2019's importance-sampling argument).

A clicked impression stands in for 1 / p(click | x) impressions of the entire space, so

    L_CVR^IPS = (1 / N) * sum_i o_i * BCE(r_i, pCVR_i) / p_i,     p_i = max(pCTR_i, floor)

is an unbiased estimate of the CVR loss over all N impressions when p is right (o = click,
r = conversion). The propensity is detached (the CTR tower learns from clicks only) and floored,
trading bias for bounded variance: with the true propensity the floor of 0.01 is what leaves the DR row
×1.09 over the true CVR (×0.99 at 0.001), with the learned one it changes nothing (docs/cvr.md "The
propensity floor"); ``self_normalize`` divides by sum(o / p) instead of
N (the SNIPS estimator), which removes the scale of the weights from the step size.

Loss = BCE(click, pCTR) + cvr_weight * L_CVR^IPS. Embedding shared by both towers, inference as
ESMM's (pCTCVR = pCTR * pCVR). ESCM² (``escm2.py``) adds the CTCVR risk and the doubly-robust form.

Which propensity: a click's probability depends on where the ad was shown, so with
``position_bypass=True`` the propensity is P(click | x, position), the CTR tower at the row's logged
position CTR b (the bypass), not the position-blind P(click | x). ``propensity = "oracle"`` uses
the world's true P(click | x, position) instead (a ``oracle_propensity`` tensor the experiment
supplies): an ablation separating the estimator's bias from the propensity model's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.features import FeatureSpec
from training.models.esmm import ESMM
from training.models.settings.ips_cvr import IPSCVRConfig


def inverse_propensity(propensity: torch.Tensor, click: torch.Tensor, floor: float) -> torch.Tensor:
    """(B,) o / p: 1 / max(p, floor) on clicked impressions, 0 elsewhere; no gradient."""
    return click / propensity.detach().clamp(min=floor)


def ips_mean(values: torch.Tensor, weights: torch.Tensor, self_normalize: bool) -> torch.Tensor:
    """sum(weights * values) over N rows, or over sum(weights) when self-normalised."""
    total = (weights * values).sum()
    return total / weights.sum().clamp(min=1e-6) if self_normalize else total / values.shape[0]


class IPSCVR(ESMM):
    """Shared embedding, CTR tower (also the propensity model), CVR tower fitted by IPS."""

    def __init__(self, spec: FeatureSpec, config: IPSCVRConfig | None = None) -> None:
        super().__init__(spec, config or IPSCVRConfig())

    def click_weights(self, batch: dict[str, torch.Tensor], ctr_logit: torch.Tensor) -> torch.Tensor:
        """(B,) o / p with p the CTR tower's pCTR at the logged position, or the oracle's; clipped."""
        if self.config.propensity == "oracle":
            if "oracle_propensity" not in batch:
                raise ValueError('propensity = "oracle" needs the true P(click | x, position) (oracle_propensity)')
            propensity = batch["oracle_propensity"].float()
        else:
            propensity = torch.sigmoid(ctr_logit)
        return inverse_propensity(propensity, batch["click"].float(), self.config.propensity_floor)

    def cvr_risk(
        self, batch: dict[str, torch.Tensor], ctr_logit: torch.Tensor, cvr_logit: torch.Tensor
    ) -> torch.Tensor:
        """L_CVR^IPS over the batch (ESCM² adds its doubly-robust form beside it)."""
        c = self.config
        weights = self.click_weights(batch, ctr_logit)  # (B,)
        error = F.binary_cross_entropy_with_logits(cvr_logit, batch["conversion"].float(), reduction="none")
        return ips_mean(error, weights, c.self_normalize)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ctr_logit, cvr_logit = self.batch_logits(batch)
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, batch["click"].float())
        return ctr_loss + self.config.cvr_weight * self.cvr_risk(batch, ctr_logit, cvr_logit)
