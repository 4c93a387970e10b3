"""AMAN: "all missing as negative", with negative sampling (Pan et al. 2008, One-Class Collaborative
Filtering), the ESMM paper's strongest naive baseline (Ma et al. 2018, section 4.2).

Unclicked impressions have no conversion label; AMAN calls them non-conversions, and, since they
far outnumber the clicks, keeps a random ``negative_rate`` share of them in each minibatch as CVR
negatives beside every clicked impression. It uses the entire space, but with labels that are wrong
wherever an unclicked impression would have converted, so pCVR is pulled below the true CVR.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from common.features import FeatureSpec
from training.models.base_cvr import BaseCVR, BaseCVRConfig


@dataclass
class AMANConfig(BaseCVRConfig):
    negative_rate: float = 0.05  # share of unclicked impressions drawn as CVR negatives per minibatch

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.negative_rate <= 1.0:
            raise ValueError(f"negative_rate must be in (0, 1], not {self.negative_rate}")


class AMAN(BaseCVR):
    """BASE plus a random sample of unclicked impressions taken as conversion negatives."""

    def __init__(self, spec: FeatureSpec, config: AMANConfig | None = None) -> None:
        super().__init__(spec, config or AMANConfig())

    def cvr_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        click = batch["click"].float()
        sampled = (torch.rand(click.shape) < self.config.negative_rate).float()  # (B,)
        return click + (1.0 - click) * sampled  # the conversion label of an unclicked row is 0
