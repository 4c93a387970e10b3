"""OVERSAMPLING's ``[model]`` settings (training/models/oversampling.py): BASE's, with the copies of each
clicked conversion."""

from __future__ import annotations

from dataclasses import dataclass

from training.models.settings.base_cvr import BaseCVRConfig


@dataclass
class OversamplingConfig(BaseCVRConfig):
    positive_copies: float = 5.0  # times each clicked conversion is counted (the paper gives no rate)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.positive_copies < 1:
            raise ValueError(f"positive_copies must be >= 1, not {self.positive_copies}")
