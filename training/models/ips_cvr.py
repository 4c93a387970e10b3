"""IPS-CVR: the CVR loss on clicked impressions weighted by the inverse propensity 1 / pCTR, with
the model's own CTR tower as the propensity model (Zhang et al. 2020, Multi-IPW; the derivation is
Yuan et al. 2019's importance-sampling argument).

A clicked impression stands in for 1 / p(click | x) impressions of the entire space, so

    L_CVR^IPS = (1 / N) * sum_i o_i * BCE(r_i, pCVR_i) / p_i,     p_i = max(pCTR_i, floor)

is an unbiased estimate of the CVR loss over all N impressions when p is right (o = click,
r = conversion). The propensity is detached (the CTR tower learns from clicks only) and floored,
trading a little bias for bounded variance; ``self_normalize`` divides by sum(o / p) instead of
N (the SNIPS estimator), which removes the scale of the weights from the step size.

Loss = BCE(click, pCTR) + cvr_weight * L_CVR^IPS. Embedding shared by both towers, inference as
ESMM's (pCTCVR = pCTR * pCVR). ESCM² (``escm2.py``) adds the CTCVR risk and the doubly-robust form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.features import FeatureSpec
from training.models.esmm import ESMM, ESMMConfig


@dataclass
class IPSCVRConfig(ESMMConfig):
    propensity_floor: float = 0.01  # pCTR is clipped below at this before 1 / pCTR (weights <= 100)
    self_normalize: bool = True  # SNIPS: divide the weighted loss by sum(o / p) instead of N
    cvr_weight: float = 1.0  # lambda_c, the weight of the CVR risk beside the CTR loss

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.propensity_floor <= 1.0:
            raise ValueError(f"propensity_floor must be in (0, 1], not {self.propensity_floor}")
        if self.cvr_weight < 0:
            raise ValueError(f"cvr_weight must be >= 0, not {self.cvr_weight}")


def inverse_propensity(ctr_logit: torch.Tensor, click: torch.Tensor, floor: float) -> torch.Tensor:
    """(B,) o / p: 1 / max(pCTR, floor) on clicked impressions, 0 elsewhere; no gradient."""
    return click / torch.sigmoid(ctr_logit.detach()).clamp(min=floor)


def ips_mean(values: torch.Tensor, weights: torch.Tensor, self_normalize: bool) -> torch.Tensor:
    """sum(weights * values) over N rows, or over sum(weights) when self-normalised."""
    total = (weights * values).sum()
    return total / weights.sum().clamp(min=1e-6) if self_normalize else total / values.shape[0]


class IPSCVR(ESMM):
    """Shared embedding, CTR tower (also the propensity model), CVR tower fitted by IPS."""

    def __init__(self, spec: FeatureSpec, config: IPSCVRConfig | None = None) -> None:
        super().__init__(spec, config or IPSCVRConfig())

    def cvr_risk(
        self, batch: dict[str, torch.Tensor], ctr_logit: torch.Tensor, cvr_logit: torch.Tensor
    ) -> torch.Tensor:
        """L_CVR^IPS over the batch (ESCM² adds its doubly-robust form beside it)."""
        c = self.config
        weights = inverse_propensity(ctr_logit, batch["click"].float(), c.propensity_floor)  # (B,)
        error = F.binary_cross_entropy_with_logits(cvr_logit, batch["conversion"].float(), reduction="none")
        return ips_mean(error, weights, c.self_normalize)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ctr_logit, cvr_logit = self.logits(batch["categorical"], batch["numeric"])
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, batch["click"].float())
        return ctr_loss + self.config.cvr_weight * self.cvr_risk(batch, ctr_logit, cvr_logit)
