"""A small debiased ESMM trained for a few steps on ``logged_batch()`` (tests/support/model_batches.py), for the
tests of what it learns and exports."""

from __future__ import annotations

import torch

from tests.support.model_batches import SPEC, logged_batch
from training.fitting.settings import TrainingConfig
from training.models.esmm_debiased import DebiasedESMM
from training.models.settings.esmm_debiased import DebiasedESMMConfig

SMALL = {"embedding_dim": 4, "hidden": [8]}  # the layer sizes of the models of the unit tests, debiased or not


def trained_debiased_esmm(params: dict) -> tuple[DebiasedESMM, dict[str, torch.Tensor]]:
    """A small debiased ESMM after 30 steps on ``logged_batch()`` (its loss checked to fall), in eval mode."""
    torch.manual_seed(0)
    model = DebiasedESMM(SPEC, DebiasedESMMConfig(**params))
    data = logged_batch()
    model.fix_constants(data)
    first = model.loss(data).item()
    for phase in model.training_phases(TrainingConfig(learning_rate=0.01)):
        for _ in range(30):
            phase.step(data)
    assert model.loss(data).item() < first
    model.eval()
    return model, data
