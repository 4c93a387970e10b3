"""BASE's ``[model]`` settings (training/models/base_cvr.py): ESMM's, without the shared embedding."""

from __future__ import annotations

from dataclasses import dataclass

from training.models.settings.esmm import ESMMConfig


@dataclass
class BaseCVRConfig(ESMMConfig):
    share_embedding: bool = False  # independent CTR and CVR models, as the paper's BASE
