"""Named parts the CTR/CVR models are built from, and the pieces of loss and metrics they share.

- ``FeatureEmbedding``: categorical buckets -> embeddings, concatenated with the numerics.
- ``Tower``: an MLP from the embedded features to one logit.
- ``product_bce``: BCE of a label against sigmoid(a) * sigmoid(b), computed in log space (ESMM's
  pCTCVR = pCTR * pCVR, and ESCM²'s global CTCVR risk).
- ``multitask_metrics``: what the logs alone can tell about pCTR, pCVR and pCTCVR (the metrics in
  model.json); entire-space CVR needs the world's ground truth (``training/evaluation/world_heldout.py``).

The sizes a tower model takes (embedding width, MLP widths, dropout) are its settings' ``TowersConfig``
(training/models/settings/towers.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.features import FeatureSpec
from training.evaluation.metrics import auc, log_loss
from training.logs.ctcvr_label import click_and_conversion

EPS = 1e-7  # keeps log(1 - p) finite


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

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations, (B, H): what an adversary may read."""
        return self.mlp[:-1](x)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output logit from ``hidden`` (``forward(x) == head(hidden(x))``), (B,)."""
        return self.mlp[-1](hidden).squeeze(-1)

    @torch.no_grad()
    def start_at(self, logit: float) -> None:
        """Set the output offset, e.g. to the training log-odds (a 0 offset means p = 0.5)."""
        self.mlp[-1].bias.fill_(logit)


def product_bce(first_logit: torch.Tensor, second_logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean BCE(label, sigmoid(first) * sigmoid(second)), stable for small products."""
    log_p = F.logsigmoid(first_logit) + F.logsigmoid(second_logit)  # (B,)
    log_not_p = torch.log1p(-log_p.exp().clamp(max=1 - EPS))  # (B,)
    return -(label * log_p + (1 - label) * log_not_p).mean()


def multitask_metrics(predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    """CTR and CTCVR over all logged impressions; CVR on clicked impressions only (what logs can tell)."""
    click = labels["click"].astype(bool)
    ctcvr = click_and_conversion(click, labels["conversion"])
    return {
        "ctr_auc": auc(click, predictions["pctr"]),
        "ctr_logloss": log_loss(click, predictions["pctr"]),
        "ctcvr_auc": auc(ctcvr, predictions["pctcvr"]),
        "ctcvr_logloss": log_loss(ctcvr, predictions["pctcvr"]),
        "cvr_auc_clicked": auc(ctcvr[click], predictions["pcvr"][click]),
    }
