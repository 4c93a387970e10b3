"""Probes of a trained adversarial network, to check why the Moore et al. 2018 sweep behaves as it does.

- ``gradient_norms``: the gradient each term of Loss_N sends to the Base network (theta_A), per
  minibatch, unweighted by lambda: if lambda times the adversary's gradient is negligible beside
  (1 - lambda) times the click loss's, SGD on Loss_N is SGD on the click loss at lr (1 - lambda).
- ``weight_change``: how far the feature path (Base, Prediction, W_Y) moved from its initial weights.
- ``linear_b_mse``: how much of b a linear fit recovers from the features or from Z_A.
- ``rank_correlation``: how much of a network's ranking is still its initial weights' ranking.
"""

from __future__ import annotations

import numpy as np
import torch

from training.models.adversarial_ctr import AdversarialCTR


def feature_path(model: AdversarialCTR) -> list[torch.Tensor]:
    """The weights that map the features to the click logit (the bypass and the offset c excluded)."""
    return [*model.base.parameters(), *model.prediction.parameters(), model.w_y.weight]


def snapshot(model: AdversarialCTR) -> list[torch.Tensor]:
    return [p.detach().clone() for p in feature_path(model)]


def weight_change(model: AdversarialCTR, initial: list[torch.Tensor]) -> float:
    """|theta - theta_0| / |theta_0| over the feature path."""
    moved = sum(float(((p.detach() - p0) ** 2).sum()) for p, p0 in zip(feature_path(model), initial, strict=True))
    size = sum(float((p0**2).sum()) for p0 in initial)
    return float(np.sqrt(moved / size))


def _norm(tensors: tuple[torch.Tensor | None, ...]) -> float:
    return float(torch.sqrt(sum((g**2).sum() for g in tensors if g is not None)))


def gradient_norms(model: AdversarialCTR, tensors: dict[str, torch.Tensor], batch_size: int) -> dict[str, float]:
    """Mean over shuffled minibatches (as in training) of |d BCE / d theta_A|, |d penalty / d theta_A| and
    the penalty itself (Cov(b, b_hat)^2 by default)."""
    base = list(model.base.parameters())
    click, adversary, penalty = [], [], []
    order = torch.randperm(tensors["click"].shape[0], generator=torch.Generator().manual_seed(0))
    for start in range(0, order.shape[0] - 1, batch_size):
        batch = {k: v[order[start : start + batch_size]] for k, v in tensors.items()}
        bce, term = model.losses(batch)
        click.append(_norm(torch.autograd.grad(bce, base, retain_graph=True, allow_unused=True)))
        adversary.append(_norm(torch.autograd.grad(term, base, allow_unused=True)))
        penalty.append(float(term.detach()))
    return {
        "grad_click": float(np.mean(click)),
        "grad_adversary": float(np.mean(adversary)),
        "penalty": float(np.mean(penalty)),
    }


def linear_b_mse(inputs: np.ndarray, b: np.ndarray) -> float:
    """In-sample MSE of the least-squares linear fit of b on ``inputs`` (plus a constant): what a linear
    adversary could recover of b from them, to set beside the Bias network's MSE and the naive one."""
    design = np.hstack([inputs.astype(np.float64), np.ones((inputs.shape[0], 1))])
    coefficients, *_ = np.linalg.lstsq(design, b.astype(np.float64), rcond=None)
    return float(np.mean((b - design @ coefficients) ** 2))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by order; the scores here are continuous)."""
    ranks = [np.argsort(np.argsort(v)).astype(np.float64) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])
