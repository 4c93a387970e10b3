"""DIVISION: separate CTR and CTCVR models, pCVR = pCTCVR / pCTR (Ma et al. 2018, section 4.2).

Both models are fitted over the entire impression space (click on every impression; click and
conversion on every impression), and pCVR follows from p(z | y = 1, x) = p(y, z | x) / p(y | x).
The two estimates are not tied to each other, so the ratio can exceed 1 where pCTR is small: it is
clipped to [0, 1], which is ESMM's motivation for learning pCVR as a factor instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.features import FeatureSpec
from training.models.parts import FeatureEmbedding, Tower, multitask_metrics
from training.models.settings.division import DivisionConfig

MIN_PCTR = 1e-6  # pCVR's denominator floor


class Division(nn.Module):
    """A CTR model and a CTCVR model, each an embedding table and a tower; pCVR is their ratio."""

    output_names = ("pctr", "pcvr", "pctcvr")

    def __init__(self, spec: FeatureSpec, config: DivisionConfig | None = None) -> None:
        super().__init__()
        self.config = config or DivisionConfig()
        c = self.config
        self.ctr_embedding = FeatureEmbedding(spec, c.embedding_dim)
        self.ctcvr_embedding = FeatureEmbedding(spec, c.embedding_dim)
        self.ctr_tower = Tower(self.ctr_embedding.out_features, c.hidden, c.dropout)
        self.ctcvr_tower = Tower(self.ctcvr_embedding.out_features, c.hidden, c.dropout)

    def logits(self, categorical: torch.Tensor, numeric: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctr_logit = self.ctr_tower(self.ctr_embedding(categorical, numeric))  # (B,)
        ctcvr_logit = self.ctcvr_tower(self.ctcvr_embedding(categorical, numeric))  # (B,)
        return ctr_logit, ctcvr_logit

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        ctr_logit, ctcvr_logit = self.logits(categorical, numeric)
        pctr = torch.sigmoid(ctr_logit)
        pctcvr = torch.sigmoid(ctcvr_logit)
        pcvr = (pctcvr / pctr.clamp(min=MIN_PCTR)).clamp(max=1.0)
        return {"pctr": pctr, "pcvr": pcvr, "pctcvr": pctcvr}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """BCE(click, pCTR) + BCE(click * conversion, pCTCVR), two independent models."""
        ctr_logit, ctcvr_logit = self.logits(batch["categorical"], batch["numeric"])
        click = batch["click"].float()
        ctcvr_label = click * batch["conversion"].float()
        return F.binary_cross_entropy_with_logits(ctr_logit, click) + F.binary_cross_entropy_with_logits(
            ctcvr_logit, ctcvr_label
        )

    metrics = staticmethod(multitask_metrics)
