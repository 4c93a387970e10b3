"""An explicit second-order user-ad interaction term for a tower's logit (the cross-side term of a
factorisation machine, Rendle 2010).

An MLP over concatenated embeddings learns a dot product between the user's and the ad's embeddings
slowly (Rendle et al. 2020, "Neural Collaborative Filtering vs. Matrix Factorization Revisited");
the world's click and conversion logits are such dot products (``alpha u.v``, ``beta u.w + rho u.v``,
``training/world/truth.py``). This term hands the tower that product directly:

    U = sum of the context features' embeddings      (user id, segment, device, hour)    (B, D)
    A = sum of the candidate features' embeddings    (ad id, category, advertiser)       (B, D)
    term = sum_d weight_d * U_d * A_d                 added to the tower's logit

i.e. every cross-side field pair's embedding product (FM's second-order term restricted to user-ad
pairs), each embedding dimension weighted per tower, so that towers sharing one embedding table can
read different dimensions (the CTR tower u.v, the CVR tower u.w and u.v). The weights start at 1
(FM's plain dot product). It reads the embedded features the tower reads, so it adds no input.
"""

from __future__ import annotations

import torch
from torch import nn

from common.features import FeatureSpec


class CrossInteraction(nn.Module):
    """(B, C * D + N) embedded features -> (B,) weighted dot product of the context and candidate sums."""

    def __init__(self, spec: FeatureSpec, dim: int) -> None:
        super().__init__()
        sides = [f.side for f in spec.categorical]
        if "context" not in sides or "candidate" not in sides:
            raise ValueError("an interaction needs categorical features on both the context and candidate side")
        self.fields, self.dim = len(sides), dim
        self.register_buffer("context", torch.tensor([s == "context" for s in sides], dtype=torch.float32))
        self.register_buffer("candidate", torch.tensor([s == "candidate" for s in sides], dtype=torch.float32))
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        fields = embedded[:, : self.fields * self.dim].reshape(-1, self.fields, self.dim)  # (B, C, D)
        user = torch.einsum("bcd,c->bd", fields, self.context)  # (B, D)
        ad = torch.einsum("bcd,c->bd", fields, self.candidate)  # (B, D)
        return (user * ad) @ self.weight  # (B,)
