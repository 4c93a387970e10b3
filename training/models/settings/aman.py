"""AMAN's ``[model]`` settings (training/models/aman.py): BASE's, with the share of unclicked impressions drawn
as conversion negatives."""

from __future__ import annotations

from dataclasses import dataclass

from training.models.settings.base_cvr import BaseCVRConfig


@dataclass
class AMANConfig(BaseCVRConfig):
    negative_rate: float = 0.05  # share of unclicked impressions drawn as CVR negatives per minibatch

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.negative_rate <= 1.0:
            raise ValueError(f"negative_rate must be in (0, 1], not {self.negative_rate}")
