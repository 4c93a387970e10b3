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

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.features import FeatureSpec
from training.metrics import auc, log_loss

EPS = 1e-7  # keeps log(1 - pCTCVR) finite


@dataclass
class ESMMConfig:
    embedding_dim: int = 18  # per categorical feature (Ma et al. 2018)
    hidden: list[int] = field(default_factory=lambda: [360, 200, 80])  # each tower's MLP
    dropout: float = 0.0  # between hidden layers
    share_embedding: bool = True  # False: ESMM-NS, one embedding table per tower

    def __post_init__(self) -> None:
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, not {self.embedding_dim}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive layer widths, not {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")


class FeatureEmbedding(nn.Module):
    """Categorical buckets -> embeddings, concatenated with the standardised numerics."""

    def __init__(self, spec: FeatureSpec, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(spec.total_buckets, dim)
        nn.init.normal_(self.table.weight, std=0.05)
        self.out_features = len(spec.categorical) * dim + len(spec.numeric)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        embedded = self.table(categorical).flatten(1)  # (B, C * D)
        return torch.cat([embedded, numeric], dim=1)  # (B, C * D + N)


class Tower(nn.Module):
    """An MLP from the embedded features to one logit."""

    def __init__(self, in_features: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_features = width
        layers.append(nn.Linear(in_features, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).squeeze(-1)  # (B,)


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
        log_pctcvr = F.logsigmoid(ctr_logit) + F.logsigmoid(cvr_logit)
        log_not_pctcvr = torch.log1p(-log_pctcvr.exp().clamp(max=1 - EPS))
        ctcvr_loss = -(ctcvr_label * log_pctcvr + (1 - ctcvr_label) * log_not_pctcvr).mean()
        return ctr_loss + ctcvr_loss

    @staticmethod
    def metrics(predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
        """CTR and CTCVR over all impressions; CVR on clicked impressions only (what logs can tell)."""
        click = labels["click"].astype(bool)
        ctcvr = click & labels["conversion"].astype(bool)
        return {
            "ctr_auc": auc(click, predictions["pctr"]),
            "ctr_logloss": log_loss(click, predictions["pctr"]),
            "ctcvr_auc": auc(ctcvr, predictions["pctcvr"]),
            "ctcvr_logloss": log_loss(ctcvr, predictions["pctcvr"]),
            "cvr_auc_clicked": auc(ctcvr[click], predictions["pcvr"][click]),
        }
