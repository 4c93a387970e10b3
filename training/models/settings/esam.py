"""ESAM's ``[model]`` settings (training/models/esam.py): the towers' sizes, the similarity's scale, and the
weights, margins and thresholds of its three losses beside the click loss."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class ESAMConfig:
    feature_dim: int = 16  # embedding size of each categorical feature
    hidden: list[int] = field(default_factory=lambda: [64])  # each tower's MLP before the output layer
    embedding_dim: int = 32  # L: size of the query and item embeddings
    scale: float = 10.0  # f_s = sigmoid(scale * cos(v_q, v_d) + bias)
    # loss weights, tuned on the world (docs/esam.md): L_DA of unit vectors is ~1e-5, yet lambda_1
    # above ~10 collapses the item space (shrinking every covariance is the cheapest alignment)
    lambda_da: float = 3.0  # lambda_1
    lambda_dc_c: float = 0.03  # lambda_2; 0.1 and more cost recall on hot and long-tail items alike
    lambda_dc_p: float = 3.0  # lambda_3
    m1: float = 0.5  # intra-class margin: squared distance to the label's center left unpenalised
    m2: float = 1.0  # inter-class margin: squared distance the two centers of a query keep at least
    # self-training thresholds: most (query, random item) pairs are irrelevant, so p1 = 0.2 lets the
    # term push the whole non-displayed domain to 0 (long-tail recall collapses); 0.02 / 0.5 do not
    p1: float = 0.02  # non-displayed scores below p1 are pushed towards 0 ...
    p2: float = 0.5  # ... and those above p2 towards 1

    def __post_init__(self) -> None:
        if min(self.feature_dim, self.embedding_dim) < 1 or any(h < 1 for h in self.hidden):
            raise ValueError("feature_dim, embedding_dim and hidden widths must be >= 1")
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, not {self.scale}")
        if min(self.lambda_da, self.lambda_dc_c, self.lambda_dc_p) < 0:
            raise ValueError("lambda_da, lambda_dc_c and lambda_dc_p must be >= 0")
        if not (0 <= self.m1 <= 4 and 0 <= self.m2 <= 4):
            raise ValueError("m1 and m2 are squared distances of unit vectors: each must lie in [0, 4]")
        if not 0.0 < self.p1 <= 1 / math.e <= self.p2 < 1.0:  # else the term pushes the other way (esam.py)
            raise ValueError(
                f"need 0 < p1 <= 1/e (0.368) <= p2 < 1, not p1={self.p1}, p2={self.p2}: -S log S pushes a "
                "score towards 0 only below 1/e and towards 1 only above it"
            )
