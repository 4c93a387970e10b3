"""The adversarial network's ``[model]`` settings (training/models/adversarial_ctr.py): the paper's sizes,
activation, optimiser and epochs by default (Moore et al. 2018), and the names each choice may take."""

from __future__ import annotations

from dataclasses import dataclass, field

ACTIVATIONS = ("tanh", "relu")  # every hidden layer's; adversarial_ctr.ACTIVATION_LAYERS has each one's module
OPTIMIZERS = ("sgd", "adam")
ADVERSARY_LOSSES = ("covariance", "correlation")  # Loss_N's penalty; adversarial_ctr.ADVERSARY_PENALTIES computes each
# where the Bypass network starts: as drawn, fitted to the log's slot CTRs (training/models/bypass_start.py), or to
# the fall of the explored rows' (those logged in a random order: training/models/explored_start.py)
BYPASS_STARTS = ("drawn", "log", "explored")


@dataclass
class AdversarialCTRConfig:
    lam: float = 0.9999  # lambda of Loss_N: weight of Cov(b, b_hat)^2 against the BCE (paper sweeps 0..0.99999)
    bypass: bool = True  # False: the paper's variant without the Bypass network
    base_hidden: list[int] = field(default_factory=lambda: [10])  # Base layers; the last width is Z_A's
    prediction_hidden: list[int] = field(default_factory=lambda: [10])  # Prediction layers -> Z_Y
    bias_hidden: list[int] = field(default_factory=lambda: [10])  # Bias layers before its linear b_hat
    bypass_units: int = 1  # the Bypass network's one hidden layer (paper: 1 node)
    activation: str = "tanh"  # every hidden layer (paper: tanh)
    embedding_dim: int = 8  # per categorical feature (no categoricals: unused)
    optimizer: str = "sgd"  # "sgd" (paper) or "adam"; learning rate from [training]
    bias_epochs: int = 100  # epochs of Loss_B alone after the main training (paper: 100)
    adversary_loss: str = "covariance"  # Loss_N's penalty: "covariance" (paper) or "correlation" (scale-free)
    bypass_start: str = "drawn"  # "drawn" (paper: random weights), "log" (fitted to the slot CTRs) or "explored"

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam < 1.0:
            raise ValueError(f"lam must be in [0, 1) (1 would drop the click loss), not {self.lam}")
        for name in ("base_hidden", "prediction_hidden", "bias_hidden"):
            widths = getattr(self, name)
            if not widths or any(w < 1 for w in widths):
                raise ValueError(f"{name} must list positive layer widths, not {widths}")
        if self.bypass_units < 1 or self.embedding_dim < 1:
            raise ValueError("bypass_units and embedding_dim must be >= 1")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {self.activation!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}")
        if self.adversary_loss not in ADVERSARY_LOSSES:
            raise ValueError(f"adversary_loss must be one of {sorted(ADVERSARY_LOSSES)}, not {self.adversary_loss!r}")
        if self.bypass_start not in BYPASS_STARTS:
            raise ValueError(f"bypass_start must be one of {list(BYPASS_STARTS)}, not {self.bypass_start!r}")
        if self.bias_epochs < 0:
            raise ValueError(f"bias_epochs must be >= 0, not {self.bias_epochs}")
