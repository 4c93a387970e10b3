"""ESMM: the Entire Space Multi-task Model (Ma et al. 2018, arXiv 1804.07931).

CVR labels exist only for clicked impressions, yet the CVR model must score every impression. ESMM
never fits pCVR on clicked impressions alone: it learns two towers over a shared embedding,

    pCTR   = sigmoid(CTR tower(x))                 supervised by click, on all impressions
    pCVR   = sigmoid(CVR tower(x))                 never supervised directly
    pCTCVR = pCTR * pCVR                           supervised by click * conversion, on all impressions

so both losses live on the entire impression space and pCVR is trained through the product.
Loss = BCE(click, pCTR) + BCE(click * conversion, pCTCVR). The paper's sizes (embedding 18,
MLP 360x200x80 per tower, Adam) are the defaults; ``share_embedding=False`` gives its ESMM-NS
ablation (each tower with its own embedding table).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.features import FeatureSpec
from training.models.parts import FeatureEmbedding, Tower, TowersConfig, multitask_metrics, product_bce


@dataclass
class ESMMConfig(TowersConfig):
    share_embedding: bool = True  # False: ESMM-NS, one embedding table per tower


class ESMM(nn.Module):
    """Shared embedding, CTR tower, CVR tower; outputs pctr, pcvr, pctcvr."""

    output_names = ("pctr", "pcvr", "pctcvr")

    def __init__(self, spec: FeatureSpec, config: ESMMConfig | None = None) -> None:
        super().__init__()
        self.config = config or ESMMConfig()
        dim = self.config.embedding_dim
        self.ctr_embedding = FeatureEmbedding(spec, dim)
        self.cvr_embedding = self.ctr_embedding if self.config.share_embedding else FeatureEmbedding(spec, dim)
        width = self.ctr_embedding.out_features
        self.ctr_tower = Tower(width, self.config.hidden, self.config.dropout)
        self.cvr_tower = Tower(width, self.config.hidden, self.config.dropout)

    def logits(self, categorical: torch.Tensor, numeric: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctr_logit = self.ctr_tower(self.ctr_embedding(categorical, numeric))  # (B,)
        cvr_logit = self.cvr_tower(self.cvr_embedding(categorical, numeric))  # (B,)
        return ctr_logit, cvr_logit

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        ctr_logit, cvr_logit = self.logits(categorical, numeric)
        pctr = torch.sigmoid(ctr_logit)
        pcvr = torch.sigmoid(cvr_logit)
        return {"pctr": pctr, "pcvr": pcvr, "pctcvr": pctr * pcvr}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """BCE(click, pCTR) + BCE(click * conversion, pCTCVR), both over every impression."""
        ctr_logit, cvr_logit = self.logits(batch["categorical"], batch["numeric"])
        click = batch["click"].float()
        ctcvr_label = click * batch["conversion"].float()
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, click)
        return ctr_loss + product_bce(ctr_logit, cvr_logit, ctcvr_label)

    metrics = staticmethod(multitask_metrics)  # CTR and CTCVR on all logged rows, CVR on clicked ones
