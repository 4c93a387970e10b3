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
from training.evaluation.metrics import log_loss
from training.fitting.dataset import ImpressionTensors
from training.fitting.epoch_validation import CTCVR_JUDGED_BY, judged_by
from training.fitting.fit import evaluate_chunks
from training.fitting.kept_epoch import kept_by
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


def test_a_slot1_esmm_s_ctcvr_is_judged_at_the_logged_slot_as_it_trains() -> None:
    """A slot-1 ESMM trains on pCTR at each row's logged slot times pCVR; its served top-slot pCTCVR against every
    slot's clicks and conversions over-predicted the lower slots' (1.80 x the rate in the auction's retraining,
    docs/auction.md), and the constant warning and the kept epoch judged that. ``ctcvr_logloss_logged_b`` is the
    product it trains on, beside the served figure."""
    model, _ = debiased_esmm()
    data = logged_batch(rows=300)
    model.fix_constants(data)
    metrics = evaluate_chunks(model, [ImpressionTensors(data)])
    model.eval()
    with torch.no_grad():
        logged_pctr = model.predict_at(data["categorical"], data["numeric"], data["b"]).double().numpy()
        pcvr = model(data["categorical"], data["numeric"])["pcvr"].double().numpy()
    ctcvr = data["click"].numpy().astype(bool) & data["conversion"].numpy().astype(bool)
    assert metrics["ctcvr_logloss_logged_b"] == pytest.approx(log_loss(ctcvr, logged_pctr * pcvr), rel=1e-6)
    assert metrics["ctcvr_logloss_logged_b"] != pytest.approx(metrics["ctcvr_logloss"], rel=1e-3)
    assert judged_by(metrics, CTCVR_JUDGED_BY) == "ctcvr_logloss_logged_b"
    assert kept_by(metrics) == (
        "ctr_logloss_logged_b + ctcvr_logloss_logged_b",
        metrics["ctr_logloss_logged_b"] + metrics["ctcvr_logloss_logged_b"],
    )


def test_a_model_without_a_pcvr_records_no_logged_ctcvr() -> None:
    metrics, _ = validated(*adversarial_ctr())
    assert "ctcvr_logloss_logged_b" not in metrics and judged_by(metrics, CTCVR_JUDGED_BY) is None
