"""ESAM: Entire Space Adaptation Model (Chen et al. 2020, arXiv 2005.10545).

A two-tower retrieval model trained on the items a previous system displayed (the source domain,
with click labels) that also learns from non-displayed items (the target domain, no labels), so the
long tail it never saw displayed is embedded like the items it did see:

    v_q = f_q(query features) / |.|,  v_d = f_d(item features) / |.|      (query tower, item tower)
    S(q, d) = sigmoid(scale * v_q . v_d + bias)                            (f_s: scaled cosine)

    L = L_s + lambda_da * L_DA + lambda_dc_c * L_DC^c + lambda_dc_p * L_DC^p

- L_s: pointwise BCE of S on the clicks of displayed items. Pointwise, because L_DC^p thresholds S
  as a probability (p1, p2), which only a calibrated pointwise score supports.
- L_DA (correlation alignment): (1/L^2) ||Cov(D^s) - Cov(D^t)||_F^2 between the batch's displayed
  and non-displayed item embeddings, with the means subtracted (the paper's formula omits it).
- L_DC^c (center-wise clustering): per query, displayed items gather around their label's center
  (clicked / not clicked, the mean of the query's items with that label) within margin m1, and the
  two centers of a query keep at least m2 apart (squared distances of unit vectors, in [0, 4]).
- L_DC^p (self-training): -S log S over the non-displayed items whose S is below p1 or above p2,
  averaged over those items; it pushes confident scores further towards 0 or 1. -S log S peaks at
  S = 1/e, so it pushes S down only below 1/e and up only above it: p1 <= 1/e <= p2.

``scale`` is fixed (S's logit ranges over [bias - scale, bias + scale]); ``bias`` is learned and
only shifts S, so it never changes a ranking. Only the towers are exported, each as its own graph.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.features import FeatureSpec
from common.repository import SIMILARITY_BIAS, SIMILARITY_SCALE
from training.evaluation.metrics import auc, log_loss
from training.models.parts import FeatureEmbedding
from training.models.settings.esam import ESAMConfig

EPS = 1e-7  # keeps log(S) finite


class EmbeddingTower(nn.Module):
    """One side's features -> a unit-length embedding of size L (f_q or f_d)."""

    def __init__(self, spec: FeatureSpec, config: ESAMConfig) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(spec, config.feature_dim)
        layers: list[nn.Module] = []
        width = self.embedding.out_features
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, config.embedding_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        if categorical.dim() == 2:  # (B, C): the exported path
            return F.normalize(self.mlp(self.embedding(categorical, numeric)), dim=-1)  # (B, L)
        b, k = categorical.shape[:2]  # (B, K, C): K items per query
        flat = self.embedding(categorical.reshape(b * k, -1), numeric.reshape(b * k, numeric.shape[-1]))
        return F.normalize(self.mlp(flat), dim=-1).reshape(b, k, -1)  # (B, K, L)


class TowerGraph(nn.Module):
    """A tower as an exportable graph: (categorical, numeric) of its side -> {output: (B, L)}."""

    def __init__(self, tower: EmbeddingTower, output: str) -> None:
        super().__init__()
        self.tower = tower
        self.output_names = (output,)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.output_names[0]: self.tower(categorical, numeric)}


def _side_columns(spec: FeatureSpec, side: str) -> tuple[list[int], list[int], list[int]]:
    """Categorical and numeric column indices of ``side`` in the full spec, and the offset shift that
    turns a full-spec bucket index into the side's own (sub-spec) index."""
    offsets = np.cumsum([0] + [f.buckets for f in spec.categorical])[:-1]
    cat = [j for j, f in enumerate(spec.categorical) if f.side == side]
    own = np.cumsum([0] + [spec.categorical[j].buckets for j in cat])[:-1]
    num = [j for j, f in enumerate(spec.numeric) if f.side == side]
    return cat, num, [int(offsets[j] - o) for j, o in zip(cat, own, strict=True)]


class ESAM(nn.Module):
    """Query tower, item tower, scaled-cosine similarity; forward scores (query, item) pairs."""

    output_names = ("score",)

    def __init__(self, spec: FeatureSpec, config: ESAMConfig | None = None) -> None:
        super().__init__()
        self.config = config or ESAMConfig()
        self.query_spec, self.item_spec = spec.for_side("context"), spec.for_side("candidate")
        self.query_tower = EmbeddingTower(self.query_spec, self.config)
        self.item_tower = EmbeddingTower(self.item_spec, self.config)
        self.bias = nn.Parameter(torch.zeros(()))
        for side, prefix in (("context", "query"), ("candidate", "item")):
            cat, num, shift = _side_columns(spec, side)
            self.register_buffer(f"{prefix}_cat", torch.tensor(cat, dtype=torch.long), persistent=False)
            self.register_buffer(f"{prefix}_num", torch.tensor(num, dtype=torch.long), persistent=False)
            self.register_buffer(f"{prefix}_shift", torch.tensor(shift, dtype=torch.long), persistent=False)

    def similarity_logit(self, v_q: torch.Tensor, v_d: torch.Tensor) -> torch.Tensor:
        """scale * v_q . v_d + bias for v_q (B, L) against v_d (B, L) or (B, K, L)."""
        if v_d.dim() == 3:
            return self.config.scale * torch.einsum("bl,bkl->bk", v_q, v_d) + self.bias  # (B, K)
        return self.config.scale * (v_q * v_d).sum(-1) + self.bias  # (B,)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        """S(q, d) of full-spec (query, item) pair rows, as ``FeatureEncoder`` encodes a log."""
        v_q = self.query_tower(categorical[:, self.query_cat] - self.query_shift, numeric[:, self.query_num])
        v_d = self.item_tower(categorical[:, self.item_cat] - self.item_shift, numeric[:, self.item_num])
        return {"score": torch.sigmoid(self.similarity_logit(v_q, v_d))}

    # -- the losses ---------------------------------------------------------------------------------

    def losses(self, batch: dict[str, torch.Tensor], targets: bool = True) -> dict[str, torch.Tensor]:
        """Each term of L on a batch of B queries, S displayed and T non-displayed items each
        (``targets=False`` skips the non-displayed items and the two terms that need them)."""
        v_q = self.query_tower(batch["query_categorical"], batch["query_numeric"])  # (B, L)
        v_s = self.item_tower(batch["item_categorical"], batch["item_numeric"])  # (B, S, L)
        click = batch["click"].float()  # (B, S)
        mask = item_mask(batch)  # (B, S): 0 marks padding (a logged request with fewer than S items)
        bce = F.binary_cross_entropy_with_logits(self.similarity_logit(v_q, v_s), click, reduction="none")
        terms = {
            "l_s": (bce * mask).sum() / mask.sum().clamp(min=1.0),
            "l_dc_c": center_clustering(v_s, click, self.config.m1, self.config.m2, mask),
        }
        if targets:
            v_t = self.item_tower(batch["target_categorical"], batch["target_numeric"])  # (B, T, L)
            terms["l_da"] = correlation_alignment(v_s[mask.bool()], v_t.flatten(0, 1))
            terms["l_dc_p"] = self_training(
                torch.sigmoid(self.similarity_logit(v_q, v_t)), self.config.p1, self.config.p2
            )
        return terms

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        c = self.config
        terms = self.losses(batch, targets=c.lambda_da > 0 or c.lambda_dc_p > 0)
        total = terms["l_s"] + c.lambda_dc_c * terms["l_dc_c"]
        if "l_da" in terms:
            total = total + c.lambda_da * terms["l_da"] + c.lambda_dc_p * terms["l_dc_p"]
        return total

    # -- metrics, inference and export --------------------------------------------------------------

    @staticmethod
    def metrics(predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
        """Click AUC and log loss of S over displayed items (retrieval metrics need the truth)."""
        click = labels["click"].reshape(-1).astype(bool)
        score = predictions["score"].reshape(-1)
        return {"click_auc": auc(click, score), "click_logloss": log_loss(click, score)}

    @torch.no_grad()
    def validation_metrics(self, tensors: dict[str, torch.Tensor]) -> dict[str, float]:
        """``metrics`` on query-grouped tensors (the fit loop's duck-typed evaluation hook)."""
        self.eval()
        v_q = self.query_tower(tensors["query_categorical"], tensors["query_numeric"])
        v_s = self.item_tower(tensors["item_categorical"], tensors["item_numeric"])
        real = item_mask(tensors).bool().numpy()
        score = torch.sigmoid(self.similarity_logit(v_q, v_s)).numpy()[real]
        return self.metrics({"score": score}, {"click": tensors["click"].numpy()[real]})

    def export_graphs(self) -> dict[str, tuple[nn.Module, str]]:
        """File name -> (graph, feature side): each tower is exported on its own side's features."""
        return {
            "query_tower.onnx": (TowerGraph(self.query_tower, "query_embedding"), "context"),
            "item_tower.onnx": (TowerGraph(self.item_tower, "item_embedding"), "candidate"),
        }

    def export_constants(self) -> dict[str, float]:
        """S = sigmoid(similarity_scale * v_q . v_d + similarity_bias), for whoever uses the towers."""
        return {SIMILARITY_SCALE: float(self.config.scale), SIMILARITY_BIAS: float(self.bias.detach())}


def item_mask(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, S) float: 1 for a displayed item, 0 for padding (``item_mask``; all ones when absent)."""
    mask = batch.get("item_mask")
    return torch.ones_like(batch["click"], dtype=torch.float32) if mask is None else mask.float()


def correlation_alignment(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1/L^2) ||Cov(source) - Cov(target)||_F^2 of (n, L) and (m, L) embeddings, means subtracted."""
    length = source.shape[1]

    def covariance(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(0, keepdim=True)
        return centred.T @ centred / max(x.shape[0] - 1, 1)  # (L, L)

    return ((covariance(source) - covariance(target)) ** 2).sum() / length**2


def center_clustering(
    items: torch.Tensor, labels: torch.Tensor, m1: float, m2: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per query: hinge on each item's squared distance to its label's center (margin m1), averaged
    over items, plus a hinge keeping the clicked and unclicked centers m2 apart, averaged over the
    queries that have both. ``items`` (B, S, L) unit vectors, ``labels`` (B, S) in {0, 1}, ``mask``
    (B, S) 0 for padding items (which count in neither)."""
    mask = torch.ones_like(labels) if mask is None else mask
    positive = (labels * mask).unsqueeze(-1)  # (B, S, 1)
    negative = ((1 - labels) * mask).unsqueeze(-1)
    n_pos = positive.sum(1)  # (B, 1)
    n_neg = negative.sum(1)
    center_pos = (items * positive).sum(1) / n_pos.clamp(min=1)  # (B, L)
    center_neg = (items * negative).sum(1) / n_neg.clamp(min=1)
    own_center = torch.where(positive.bool(), center_pos.unsqueeze(1), center_neg.unsqueeze(1))  # (B, S, L)
    intra = (F.relu(((items - own_center) ** 2).sum(-1) - m1) * mask).sum() / mask.sum().clamp(min=1.0)
    both = ((n_pos > 0) & (n_neg > 0)).squeeze(-1)  # (B,)
    if not both.any():
        return intra
    inter = F.relu(m2 - ((center_pos[both] - center_neg[both]) ** 2).sum(-1)).mean()
    return intra + inter


def self_training(scores: torch.Tensor, p1: float, p2: float) -> torch.Tensor:
    """-S log S averaged over the scores below p1 or above p2 (0 when there are none)."""
    confident = ((scores < p1) | (scores > p2)).float()
    entropy = -scores * torch.log(scores.clamp(min=EPS))
    return (entropy * confident).sum() / confident.sum().clamp(min=1.0)
