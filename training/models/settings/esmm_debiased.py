"""Debiased ESMM's ``[model]`` settings (training/models/esmm_debiased.py): ESMM's, with the position bypass on
and the adversary's weight and layers."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.models.settings.esmm import ESMMConfig


@dataclass
class DebiasedESMMConfig(ESMMConfig):
    position_bypass: bool = True  # the point of this model: pCTR / pCTCVR served for slot 1
    lam: float = 0.0  # weight of Cov(b, b_hat)^2 against the ESMM loss; 0: no adversary
    bias_hidden: list[int] = field(default_factory=lambda: [16])  # the adversary's tanh layers

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.position_bypass:
            raise ValueError("debiased ESMM needs position_bypass = true (without it, use kind = 'esmm')")
        if not 0.0 <= self.lam < 1.0:
            raise ValueError(f"lam must be in [0, 1) (1 would drop the ESMM loss), not {self.lam}")
        if not self.bias_hidden or any(w < 1 for w in self.bias_hidden):
            raise ValueError(f"bias_hidden must list positive layer widths, not {self.bias_hidden}")
