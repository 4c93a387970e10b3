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

``position_bypass=True`` adds Moore et al. 2018's bypass to the CTR tower (``position_bypass.py``):
in training the CTR logit also sees b, the CTR of the row's logged position, and the exported graph
fixes b to the position-1 CTR, so pCTR and pCTCVR = pCTR * pCVR are for the top slot, while pCVR
(position-free) is learned without the examination confounding it. Without it, pCTR learns the
average logged position. ``interaction=True`` adds to each tower's logit an explicit user-ad
interaction, a weighted dot product of the context and candidate embeddings (``interaction.py``).
The towers' output offsets start at the training log-odds (of the CTR and of the CVR of clicked
rows), so the first steps fit the data instead of a constant.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.features import FeatureSpec
from training.models.interaction import CrossInteraction
from training.models.parts import FeatureEmbedding, Tower, multitask_metrics, product_bce
from training.models.position_bypass import PositionBypass
from training.models.settings.esmm import ESMMConfig


def log_odds(events: torch.Tensor, trials: torch.Tensor) -> float:
    """log(p / (1 - p)) of events / trials, p kept inside [1e-4, 1 - 1e-4]."""
    p = min(max(float(events) / max(float(trials), 1.0), 1e-4), 1 - 1e-4)
    return math.log(p / (1.0 - p))


class ESMM(nn.Module):
    """Shared embedding, CTR tower (optionally with the position bypass), CVR tower; outputs pctr, pcvr, pctcvr."""

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
        self.bypass = PositionBypass(self.config.bypass_units) if self.config.position_bypass else None
        cross = self.config.interaction
        self.ctr_interaction = CrossInteraction(spec, dim) if cross else None
        self.cvr_interaction = CrossInteraction(spec, dim) if cross else None
        # bypass_start = "explored": which start fix_constants used, and why (model.json's training.bypass_start)
        self.bypass_started: dict[str, Any] | None = None

    def logits(
        self, categorical: torch.Tensor, numeric: torch.Tensor, b: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(CTR logit, CVR logit), (B,) each; with a bypass, the CTR logit is at position CTR b (slot 1 if None)."""
        ctr_logit = self.ctr_logit(categorical, numeric, b)  # first: dropout draws in the order they always were
        return ctr_logit, self.cvr_logit(categorical, numeric)

    def ctr_logit(self, categorical: torch.Tensor, numeric: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """The CTR logit, (B,); with a bypass, at position CTR b (slot 1 if None)."""
        return self.at_position(self.slot_free_logit(categorical, numeric), b)

    def at_position(self, slot_free: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """The CTR logit from its slot-free part, (B,); with a bypass, at position CTR b (slot 1 if None)."""
        return slot_free if self.bypass is None else slot_free + self.bypass_logit(b)

    def cvr_logit(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """The CVR logit, (B,)."""
        cvr_input = self.cvr_embedding(categorical, numeric)
        return self.cvr_tower(cvr_input) + self.cross(self.cvr_interaction, cvr_input)

    def slot_free_logit(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """The CTR logit without the bypass's term, (B,): what the rows' features alone say."""
        ctr_input = self.ctr_embedding(categorical, numeric)  # (B, C * D + N)
        return self.ctr_tower(ctr_input) + self.cross(self.ctr_interaction, ctr_input)

    def bypass_logit(self, b: torch.Tensor | None) -> torch.Tensor:
        """The bypass's term of the CTR logit at position CTR b (slot 1 if None); 0 without a bypass."""
        return torch.zeros(()) if self.bypass is None else self.bypass(b)

    @staticmethod
    def cross(interaction: CrossInteraction | None, embedded: torch.Tensor) -> torch.Tensor | float:
        """A tower's interaction term for its embedded features, (B,); 0 without the interaction."""
        return 0.0 if interaction is None else interaction(embedded)

    def batch_logits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The training logits of a minibatch: the CTR logit at each row's logged position."""
        return self.logits(batch["categorical"], batch["numeric"], batch.get("b"))

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.served_outputs(self.slot_free_logit(categorical, numeric), categorical, numeric)

    def served_outputs(
        self, slot_free: torch.Tensor, categorical: torch.Tensor, numeric: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The outputs (``forward``'s, the exported graph's) from the CTR tower's ``slot_free_logit`` of the
        rows: a slot-1 model's validation computes that once for these and for its pCTR at each row's logged
        slot (``position_bypass.slot1_predictions``)."""
        ctr_logit = self.at_position(slot_free, None)
        cvr_logit = self.cvr_logit(categorical, numeric)
        pctr = torch.sigmoid(ctr_logit)
        pcvr = torch.sigmoid(cvr_logit)
        return {"pctr": pctr, "pcvr": pcvr, "pctcvr": pctr * pcvr}

    def predict_at(self, categorical: torch.Tensor, numeric: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """pCTR with a given position CTR b per row (the bypass's learned slot effect), for analysis; the
        CVR tower, which it does not read, is not run."""
        return torch.sigmoid(self.ctr_logit(categorical, numeric, b))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """BCE(click, pCTR) + BCE(click * conversion, pCTCVR), both over every impression."""
        ctr_logit, cvr_logit = self.batch_logits(batch)
        click = batch["click"].float()
        ctcvr_label = click * batch["conversion"].float()
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logit, click)
        return ctr_loss + product_bce(ctr_logit, cvr_logit, ctcvr_label)

    def fix_constants(self, tensors: dict[str, torch.Tensor]) -> None:
        """Output offsets at the training log-odds; the bypass's b at slot 1 and its standardisation. With
        ``bypass_start = "log"`` the bypass's term and the CTR tower's offset start at each slot's logged click
        log-odds instead, with "explored" at the explored rows' fall (``PositionBypass.start_at``)."""
        click, conversion = tensors["click"].double(), tensors["conversion"].double()
        ctr_offset = log_odds(click.sum(), torch.tensor(click.numel()))
        if self.bypass is not None:
            self.bypass.fix(tensors)
            if self.config.bypass_start != "drawn":
                ctr_offset, self.bypass_started = self.bypass.start_at(self.config.bypass_start, tensors)
        self.ctr_tower.start_at(ctr_offset)
        self.cvr_tower.start_at(log_odds((click * conversion).sum(), click.sum()))

    metrics = staticmethod(multitask_metrics)  # CTR and CTCVR on all logged rows, CVR on clicked ones
