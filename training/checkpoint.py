"""A trained model on disk before export: weights plus everything needed to rebuild and describe it."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from common.features import FeatureSpec
from training.models.registry import build_model

if TYPE_CHECKING:
    from training.model_config import ModelConfig


@dataclass
class Checkpoint:
    name: str  # the repository model it will be exported as
    kind: str  # a key of MODEL_KINDS
    model_params: dict[str, Any]  # the config's [model] table
    spec: FeatureSpec  # fitted
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float] = field(default_factory=dict)
    data_fingerprint: str = ""
    training: dict[str, Any] = field(default_factory=dict)  # settings, for model.json
    constants: dict[str, float] = field(default_factory=dict)  # values fixed into the exported graph
    # a retrieval model's catalog: raw item feature columns (the ids under ``catalog_id``), embedded
    # by the exported item graph into the version directory
    catalog: dict[str, list] = field(default_factory=dict)
    catalog_id: str = ""
    # model.json's ``position``: the regime its pCTR / pCTCVR hold for and the learned slot CTR ratios
    position: dict[str, Any] | None = None

    @classmethod
    def trained(
        cls,
        config: ModelConfig,
        spec: FeatureSpec,
        model: nn.Module,
        metrics: dict[str, float],
        fingerprint: str,
        training: dict[str, Any],
        **extra: Any,
    ) -> Checkpoint:
        """A model just trained under ``config``: its name, kind and ``[model]`` table, its weights, and the
        ``[training]`` settings with ``training`` added (model.json records both); ``extra`` sets the
        fields of one kind (an impression model's constants and position summary, a retrieval catalog)."""
        return cls(
            name=config.name,
            kind=config.kind,
            model_params=config.model,
            spec=spec,
            state_dict=model.state_dict(),
            metrics=metrics,
            data_fingerprint=fingerprint,
            training={**asdict(config.training), **training},
            **extra,
        )

    def build(self) -> nn.Module:
        model = build_model(self.kind, self.spec, self.model_params)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = dict(vars(self), spec=self.spec.to_dict())
        temporary = path.with_suffix(".tmp")
        torch.save(payload, temporary)
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint at {path}: run `ctr train` first")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        payload["spec"] = FeatureSpec.from_dict(payload["spec"])
        return cls(**payload)
