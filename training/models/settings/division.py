"""DIVISION's ``[model]`` settings (training/models/division.py): the towers' sizes, of its two models."""

from __future__ import annotations

from dataclasses import dataclass

from training.models.settings.towers import TowersConfig


@dataclass
class DivisionConfig(TowersConfig):
    pass  # the sizes of both models; they never share an embedding (the paper's "separate models")
