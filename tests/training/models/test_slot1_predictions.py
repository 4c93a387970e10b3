"""A slot-1 model's validation runs its CTR tower once a minibatch, for its outputs (the top slot's pCTR) and for
its pCTR at each row's logged slot (``ctr_logloss_logged_b``) alike: it ran it twice, once in the forward and
once more for the logged slots. The figures are those of the two runs, bit for bit (a model without
``served_outputs``, the contract's members alone, still takes two)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.support.debiased_esmm import SMALL
from tests.support.model_batches import SPEC, logged_batch
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import evaluate_chunks
from training.models.adversarial_ctr import AdversarialCTR
from training.models.esmm_debiased import DebiasedESMM
from training.models.settings.adversarial_ctr import AdversarialCTRConfig
from training.models.settings.esmm_debiased import DebiasedESMMConfig


class WithoutServedOutputs(DebiasedESMM):
    """A slot-1 model with the contract's members alone (docs/models.md): its forward is not made from a
    ``slot_free_logit`` the validation could reuse."""

    served_outputs = None  # type: ignore[assignment]

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        slot_free = self.slot_free_logit(categorical, numeric)
        return DebiasedESMM.served_outputs(self, slot_free, categorical, numeric)


def debiased_esmm(kind: type[DebiasedESMM] = DebiasedESMM) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = kind(SPEC, DebiasedESMMConfig(**SMALL))
    return model, model.ctr_tower


def adversarial_ctr() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = AdversarialCTR(SPEC, AdversarialCTRConfig(embedding_dim=4))
    return model, model.base


def validated(model: nn.Module, tower: nn.Module) -> tuple[dict[str, float], int]:
    """``evaluate_chunks`` of the model over two chunks (one minibatch each), and how often ``tower`` ran."""
    data = logged_batch(rows=300)
    model.fix_constants(data)
    runs = []
    tower.register_forward_hook(lambda *_: runs.append(1))
    rows = ImpressionTensors(data)
    metrics = evaluate_chunks(model, [rows.take(slice(0, 120)), rows.take(slice(120, 300))])
    return metrics, len(runs)


@pytest.mark.parametrize("build", [debiased_esmm, adversarial_ctr], ids=["esmm_debiased", "adversarial_ctr"])
def test_a_slot1_validation_runs_the_ctr_tower_once_a_minibatch(build) -> None:
    metrics, runs = validated(*build())
    assert runs == 2 and "ctr_logloss_logged_b" in metrics and "ctr_logloss" in metrics


def test_the_figures_are_those_of_two_runs_bit_for_bit() -> None:
    once, runs_once = validated(*debiased_esmm())
    twice, runs_twice = validated(*debiased_esmm(WithoutServedOutputs))
    assert (runs_once, runs_twice) == (2, 4)
    assert once == twice
