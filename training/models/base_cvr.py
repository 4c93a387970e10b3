"""BASE: a CVR model fitted on clicked impressions only, the baseline of ESMM's Table 2 (Ma et al.
2018, arXiv 1804.07931, section 4.2).

The CVR tower sees a conversion label only where there was a click, so it learns
p(conversion | click, x) on the clicked population and is then asked to score every impression:
the sample-selection bias ESMM removes. A CTR tower with its own embedding table is trained
alongside on every impression, only so that the model answers like every other one (pCTR, and
pCTCVR = pCTR * pCVR) and can fill the service's ``ctcvr`` role; with separate tables the two
never share a parameter, so the CVR model is the paper's BASE, untouched by click supervision.

Loss = BCE(click, pCTR) over all impressions + sum(w * BCE(conversion, pCVR)) / sum(w), where
the sample weight w is the method: here w = click. OVERSAMPLING and AMAN (``oversampling.py``,
``aman.py``) change only ``cvr_weights``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.features import FeatureSpec
from training.models.esmm import ESMM
from training.models.settings.base_cvr import BaseCVRConfig


class BaseCVR(ESMM):
    """CTR tower and CVR tower, each trained on its own labels; inference as ESMM's (pCTCVR = product)."""

    def __init__(self, spec: FeatureSpec, config: BaseCVRConfig | None = None) -> None:
        super().__init__(spec, config or BaseCVRConfig())

    def cvr_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) weight of each impression in the CVR loss: the clicked ones only."""
        return batch["click"].float()

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ctr_logit, cvr_logit = self.batch_logits(batch)
        click = batch["click"].float()
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, click)
        weights = self.cvr_weights(batch)  # (B,)
        cvr_bce = F.binary_cross_entropy_with_logits(cvr_logit, batch["conversion"].float(), reduction="none")
        return ctr_loss + (weights * cvr_bce).sum() / weights.sum().clamp(min=1.0)
