"""Position-debiased pCTR: the adversarial network with a bypass tower (Moore et al. 2018, arXiv 1804.06909).

Logged clicks come from a feedback loop: the ads shown high on the page were ranked there by the
previous model and collect most clicks, so features that predict "was shown high" look like features
that predict clicks. The model summarises that bias by b, the CTR of the row's position over the
training window, and learns a representation Z_A of the features that predicts clicks but not b:

    Base        features -> Z_A                           (theta_A)
    Prediction  Z_A      -> Z_Y                           (theta_Y)
    Bias        Z_A      -> b_hat, linear output          (theta_B, the adversary; train only)
    Bypass      b        -> Z_BY, 1 hidden unit           (theta_BY)
    y_hat = sigmoid(W_Y . Z_Y + W_BY . Z_BY + c)

Two losses are optimised alternately on the same minibatch:
    Loss_B = mean (b - b_hat)^2                                   over theta_B only
    Loss_N = (1 - lambda) BCE(y, y_hat) + lambda Cov(b, b_hat)^2  over theta_A, theta_Y, theta_BY only
(``adversary_loss="correlation"`` replaces Cov^2 by Corr(b, b_hat)^2, the covariance of b and b_hat
both standardised: a penalty that does not shrink with b's spread; docs/moore2018.md)
and after that main phase the Bias network alone trains further on Loss_B, so that its error on b
measures how much position information is left in Z_A. At inference the Bias network is unused and
b is FIXED to the position-1 CTR, a buffer set from the training data before export: the exported
graph takes only the features. ``bypass=False`` gives the paper's variant without the bypass tower.
The paper's sizes (tanh layers of 10 units, a 1-unit bypass) and optimiser (SGD, lr 0.01, minibatch
100, 100 + 100 epochs) are the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.features import FeatureSpec
from common.repository import POSITION_B
from training.evaluation.metrics import auc, log_loss
from training.fitting.embedding_optimizer import adam
from training.fitting.fit import TrainingPhase, descend
from training.fitting.settings import TrainingConfig
from training.models.bypass_start import start_bypass
from training.models.parts import FeatureEmbedding
from training.models.settings.adversarial_ctr import AdversarialCTRConfig
from training.position_ctr import bias_constants

# each of the settings' ACTIVATIONS as a layer (tests/training/models/test_adversarial_ctr.py checks they agree)
ACTIVATION_LAYERS: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(in_features: int, widths: list[int], activation: str) -> nn.Sequential:
    """Linear + activation per width (every layer hidden, so the output is activated)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), ACTIVATION_LAYERS[activation]()]
        in_features = width
    return nn.Sequential(*layers)


def squared_covariance(b: torch.Tensor, b_hat: torch.Tensor) -> torch.Tensor:
    """Cov(b, b_hat)^2, the sample covariance over the minibatch (n - 1 in the denominator)."""
    n = max(b.shape[0] - 1, 1)
    return (((b - b.mean()) * (b_hat - b_hat.mean())).sum() / n) ** 2


def squared_correlation(b: torch.Tensor, b_hat: torch.Tensor) -> torch.Tensor:
    """Corr(b, b_hat)^2 over the minibatch (0 when either is constant there)."""
    b, b_hat = b - b.mean(), b_hat - b_hat.mean()
    return (b * b_hat).sum() ** 2 / ((b**2).sum() * (b_hat**2).sum() + 1e-12)


# each of the settings' ADVERSARY_LOSSES computed (tests/training/models/test_adversarial_ctr.py checks they agree)
ADVERSARY_PENALTIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "covariance": squared_covariance,
    "correlation": squared_correlation,
}


class Base(nn.Module):
    """Features -> Z_A: embedded categoricals and standardised numerics through an MLP."""

    def __init__(self, spec: FeatureSpec, config: AdversarialCTRConfig) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(spec, config.embedding_dim) if spec.categorical else None
        width = self.embedding.out_features if self.embedding is not None else len(spec.numeric)
        self.mlp = mlp(width, config.base_hidden, config.activation)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        x = self.embedding(categorical, numeric) if self.embedding is not None else numeric  # (B, F)
        return self.mlp(x)  # (B, A)


class Prediction(nn.Module):
    """Z_A -> Z_Y, the click representation."""

    def __init__(self, in_features: int, config: AdversarialCTRConfig) -> None:
        super().__init__()
        self.mlp = mlp(in_features, config.prediction_hidden, config.activation)

    def forward(self, z_a: torch.Tensor) -> torch.Tensor:
        return self.mlp(z_a)  # (B, Y)


class Bias(nn.Module):
    """The adversary: Z_A -> b_hat (linear output), trying to recover the position CTR."""

    def __init__(self, in_features: int, config: AdversarialCTRConfig) -> None:
        super().__init__()
        self.mlp = mlp(in_features, config.bias_hidden, config.activation)
        self.out = nn.Linear(config.bias_hidden[-1], 1)

    def forward(self, z_a: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(z_a)).squeeze(-1)  # (B,)


class Bypass(nn.Module):
    """b -> Z_BY: the position CTR enters the prediction only through this small tower."""

    def __init__(self, config: AdversarialCTRConfig) -> None:
        super().__init__()
        self.mlp = mlp(1, [config.bypass_units], config.activation)

    def forward(self, b: torch.Tensor) -> torch.Tensor:
        return self.mlp(b.unsqueeze(-1))  # (B, BY); b arrives standardised


class AdversarialCTR(nn.Module):
    """Base, Prediction, Bias and (optional) Bypass networks; serves pctr with b fixed to the position-1 CTR."""

    output_names = ("pctr",)

    def __init__(self, spec: FeatureSpec, config: AdversarialCTRConfig | None = None) -> None:
        super().__init__()
        self.config = config or AdversarialCTRConfig()
        z_a = self.config.base_hidden[-1]
        self.base = Base(spec, self.config)
        self.prediction = Prediction(z_a, self.config)
        self.bias = Bias(z_a, self.config)
        self.bypass = Bypass(self.config) if self.config.bypass else None
        self.w_y = nn.Linear(self.config.prediction_hidden[-1], 1)  # W_Y and the offset c
        self.w_by = nn.Linear(self.config.bypass_units, 1, bias=False) if self.config.bypass else None
        self.register_buffer("b_inference", torch.tensor(0.0))  # the position-1 CTR, set by fix_constants
        # b's mean and spread over the training rows: the bypass sees b standardised, like any numeric input
        self.register_buffer("b_mean", torch.tensor(0.0))
        self.register_buffer("b_std", torch.tensor(1.0))
        # bypass_start = "explored": which start fix_constants used, and why (model.json's training.bypass_start)
        self.bypass_started: dict[str, Any] | None = None

    # -- the inference path (the only part exported) -------------------------------------------

    def logit(self, categorical: torch.Tensor, numeric: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.at_position(self.slot_free_logit(categorical, numeric), b)

    def at_position(self, slot_free: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The logit from its slot-free part, (B,); with a bypass, at position CTR b."""
        return slot_free if self.bypass is None else slot_free + self.bypass_logit(b)

    def slot_free_logit(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """The logit without the bypass's term, (B,): what the rows' features alone say."""
        return self.w_y(self.prediction(self.base(categorical, numeric))).squeeze(-1)

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.served_outputs(self.slot_free_logit(categorical, numeric), categorical, numeric)

    def served_outputs(
        self, slot_free: torch.Tensor, categorical: torch.Tensor, numeric: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The outputs (``forward``'s, the exported graph's) from the ``slot_free_logit`` of the rows: a slot-1
        model's validation computes that once for these and for its pCTR at each row's logged slot
        (``position_bypass.slot1_predictions``)."""
        b = self.b_inference.reshape(1)  # the fixed position-1 CTR: one bypass term, broadcast over the rows
        return {"pctr": torch.sigmoid(self.at_position(slot_free, b))}  # (the export folds it: position_bypass.py)

    def predict_at(self, categorical: torch.Tensor, numeric: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """pCTR with a given b per row (e.g. another position's CTR), for analysis."""
        return torch.sigmoid(self.logit(categorical, numeric, b))

    # -- training --------------------------------------------------------------------------------

    def losses(
        self, batch: dict[str, torch.Tensor], z_a: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(BCE, the adversary's penalty: Cov(b, b_hat)^2 by default) on a minibatch holding categorical,
        numeric, click and b (Z_A if computed)."""
        b = batch["b"].float()
        if z_a is None:
            z_a = self.base(batch["categorical"], batch["numeric"])  # (B, A)
        b_hat = self.bias(z_a)
        bce = F.binary_cross_entropy_with_logits(
            self.w_y(self.prediction(z_a)).squeeze(-1) + self.bypass_logit(b), batch["click"].float()
        )
        return bce, ADVERSARY_PENALTIES[self.config.adversary_loss](b, b_hat)

    def bypass_logit(self, b: torch.Tensor) -> torch.Tensor:
        """The Bypass network's term of the logit at position CTR b (0 without it)."""
        if self.bypass is None:
            return torch.zeros_like(b)
        return self.w_by(self.bypass((b - self.b_mean) / self.b_std)).squeeze(-1)

    def loss(self, batch: dict[str, torch.Tensor], z_a: torch.Tensor | None = None) -> torch.Tensor:
        """Loss_N, the objective of the predicting networks."""
        bce, penalty = self.losses(batch, z_a)
        return (1.0 - self.config.lam) * bce + self.config.lam * penalty

    def bias_loss(self, batch: dict[str, torch.Tensor], z_a: torch.Tensor | None = None) -> torch.Tensor:
        """Loss_B per row, mean (b - b_hat)^2, with Z_A held fixed (no gradient reaches the Base network).

        The paper writes Loss_B as a sum over the minibatch; the mean has the same minimiser and keeps
        SGD at lr 0.01 stable (the sum multiplies the step by the minibatch size and diverges).
        """
        if z_a is None:
            with torch.no_grad():
                z_a = self.base(batch["categorical"], batch["numeric"])
        return ((batch["b"].float() - self.bias(z_a.detach())) ** 2).mean()

    def predictor_parameters(self) -> list[nn.Parameter]:
        """theta_A, theta_Y, theta_BY (and W_Y, W_BY, c): what Loss_N moves."""
        bias = {id(p) for p in self.bias.parameters()}
        return [p for p in self.parameters() if id(p) not in bias]

    def fix_constants(self, tensors: dict[str, torch.Tensor]) -> None:
        """Sets b at inference to the position-1 CTR of the training rows, b's standardisation, and c.

        The offset c starts at the log-odds of the training CTR. Left at 0 (p = 0.5 against a CTR of a
        few percent), Adam at lr 1e-3 moves it by about the learning rate per step, so the first
        epochs are spent pushing every bounded tanh unit into saturation to produce the constant
        -3 logit instead: their gradients vanish and the network ends up predicting the mean CTR
        (validation AUC about 0.5 after one epoch on the world's logs).
        """
        b_first, b_mean, b_std = bias_constants(tensors["position"].numpy(), tensors["b"].numpy())
        self.b_inference.fill_(b_first)
        self.b_mean.fill_(b_mean)
        self.b_std.fill_(b_std)
        ctr = float(tensors["click"].double().mean().clamp(1e-4, 1 - 1e-4))
        offset = math.log(ctr / (1.0 - ctr))
        if self.bypass is not None and self.config.bypass_start != "drawn":
            hidden, activation = self.bypass.mlp[0], self.bypass.mlp[1]
            start = self.config.bypass_start
            offset, self.bypass_started = start_bypass(start, hidden, activation, self.w_by, b_mean, b_std, tensors)
        with torch.no_grad():
            self.w_y.bias.fill_(offset)

    @property
    def constants(self) -> dict[str, float]:
        return {POSITION_B: float(self.b_inference)}

    def training_phases(self, config: TrainingConfig) -> list[TrainingPhase]:
        """Alternating Loss_B / Loss_N steps for ``config.epochs``, then Loss_B alone for ``bias_epochs``."""
        make = torch.optim.SGD if self.config.optimizer == "sgd" else torch.optim.Adam
        adversary = make(self.bias.parameters(), lr=config.learning_rate)
        if self.config.optimizer == "adam":
            predictors = adam(
                self, self.predictor_parameters(), config.learning_rate, config.weight_decay, config.embedding_optimizer
            )
        elif config.embedding_optimizer == "adam":
            predictors = make(self.predictor_parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        else:  # lazy Adam's table beside SGD's network would be neither the paper's nor Adam's
            raise ValueError('[training] embedding_optimizer = "sparse_adam" needs [model] optimizer = "adam"')

        def bias_step(batch: dict[str, torch.Tensor]) -> float:
            return descend(adversary, self.bias_loss, batch)

        def alternating_step(batch: dict[str, torch.Tensor]) -> float:
            # Loss_B, then Loss_N (with the updated adversary) on the same minibatch; one Base forward for both
            z_a = self.base(batch["categorical"], batch["numeric"])
            descend(adversary, lambda rows: self.bias_loss(rows, z_a), batch)
            return descend(predictors, lambda rows: self.loss(rows, z_a), batch)

        return [
            TrainingPhase("adversarial", config.epochs, alternating_step),
            TrainingPhase("bias", self.config.bias_epochs, bias_step),
        ]

    @torch.no_grad()
    def bias_mse(self, categorical: torch.Tensor, numeric: torch.Tensor, b: torch.Tensor) -> float:
        """Mean (b - b_hat)^2: how much of b the adversary still recovers from Z_A."""
        return float(((b.float() - self.bias(self.base(categorical, numeric))) ** 2).mean())

    @staticmethod
    def metrics(predictions: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
        click = labels["click"].astype(bool)
        return {"ctr_auc": auc(click, predictions["pctr"]), "ctr_logloss": log_loss(click, predictions["pctr"])}
