"""AMAN: "all missing as negative", with negative sampling (Pan et al. 2008, One-Class Collaborative
Filtering), the ESMM paper's strongest naive baseline (Ma et al. 2018, section 4.2).

Unclicked impressions have no conversion label; AMAN calls them non-conversions, and, since they
far outnumber the clicks, keeps a random ``negative_rate`` share of them in each minibatch as CVR
negatives beside every clicked impression. It uses the entire space, but with labels that are wrong
wherever an unclicked impression would have converted, so pCVR is pulled below the true CVR.
"""

from __future__ import annotations

import torch

from common.features import FeatureSpec
from training.models.base_cvr import BaseCVR
from training.models.settings.aman import AMANConfig


class AMAN(BaseCVR):
    """BASE plus a random sample of unclicked impressions taken as conversion negatives."""

    def __init__(self, spec: FeatureSpec, config: AMANConfig | None = None) -> None:
        super().__init__(spec, config or AMANConfig())

    def cvr_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        click = batch["click"].float()
        sampled = (torch.rand(click.shape) < self.config.negative_rate).float()  # (B,)
        return click + (1.0 - click) * sampled  # the conversion label of an unclicked row is 0
