"""The settings every tower model takes (ESMM, its CVR baselines and successors, DIVISION): the embedding width,
each tower's MLP widths and the dropout between its layers (``Tower`` and ``FeatureEmbedding`` in
training/models/parts.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TowersConfig:
    embedding_dim: int = 18  # per categorical feature (Ma et al. 2018)
    hidden: list[int] = field(default_factory=lambda: [360, 200, 80])  # each tower's MLP
    dropout: float = 0.0  # between hidden layers

    def __post_init__(self) -> None:
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, not {self.embedding_dim}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive layer widths, not {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
