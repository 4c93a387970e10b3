"""OVERSAMPLING: BASE with every converted click copied ``positive_copies`` times, the ESMM paper's
baseline for sparse conversion labels (Ma et al. 2018, section 4.2, after Weiss 2004).

Copying a row k times in the training set equals weighting its loss by k (the epoch sees the same
rows, the gradient the same sum), so the copies are weights here. It eases the training on rare
positives and, by design, inflates pCVR by about the copy factor on the odds scale: it is
ranking-only, and its calibration is expected to be poor.
"""

from __future__ import annotations

import torch

from common.features import FeatureSpec
from training.models.base_cvr import BaseCVR
from training.models.settings.oversampling import OversamplingConfig


class Oversampling(BaseCVR):
    """BASE, with clicked conversions counted ``positive_copies`` times in the CVR loss."""

    def __init__(self, spec: FeatureSpec, config: OversamplingConfig | None = None) -> None:
        super().__init__(spec, config or OversamplingConfig())

    def cvr_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        click = batch["click"].float()
        conversion = batch["conversion"].float()  # 0 unless clicked
        return click + (self.config.positive_copies - 1.0) * conversion
