"""The ESMM family's position bypass: debiased ESMM (with and without the adversary), position-aware and
oracle propensities, DR's direct-method imputation, and the position regime recorded for export."""

from __future__ import annotations

import logging
import math

import numpy as np
import onnx
import pytest
import torch

from common.repository import read_manifest
from tests.support.debiased_esmm import SMALL, trained_debiased_esmm
from tests.support.model_batches import SPEC, logged_batch
from tests.support.optimized_graph import PER_ROW_BYPASS_OPS, optimized_op_types
from training.export import PARITY_TOLERANCE, export_checkpoint
from training.fitting.checkpoint import Checkpoint
from training.models.escm2 import ESCM2
from training.models.esmm import ESMM
from training.models.ips_cvr import IPSCVR
from training.models.position_bypass import RATIO_ROWS, inverted_slots, position_summary
from training.models.settings.escm2 import ESCM2Config
from training.models.settings.esmm import ESMMConfig
from training.models.settings.esmm_debiased import DebiasedESMMConfig
from training.models.settings.ips_cvr import IPSCVRConfig
from training.position_ctr import listed_slots, position_ctr
from training.torch_threads import using_torch_threads


def test_offsets_start_at_the_training_log_odds():
    model = ESMM(SPEC, ESMMConfig(**SMALL))
    data = logged_batch()
    model.fix_constants(data)
    click, conversion = data["click"].double(), data["conversion"].double()
    ctr = float(click.mean())
    cvr = float(conversion.sum() / click.sum())
    assert math.isclose(float(model.ctr_tower.mlp[-1].bias.detach()), math.log(ctr / (1 - ctr)), rel_tol=1e-5)
    assert math.isclose(float(model.cvr_tower.mlp[-1].bias.detach()), math.log(cvr / (1 - cvr)), rel_tol=1e-5)


@pytest.mark.parametrize("lam", [0.0, 0.9])
def test_debiased_esmm_trains_serves_slot_1_and_exports_without_the_adversary(lam, tmp_path):
    params = {**SMALL, "lam": lam}
    model, data = trained_debiased_esmm(params)
    out = model(data["categorical"], data["numeric"])
    slot1 = model.predict_at(data["categorical"], data["numeric"], model.bypass.b_inference.expand(256))
    torch.testing.assert_close(out["pctr"], slot1)  # served at the position-1 CTR
    torch.testing.assert_close(out["pctcvr"], out["pctr"] * out["pcvr"])
    position = position_summary(model, data)
    assert position["regime"] == "slot1" and position["ctr_ratios"][0] == 1.0 and len(position["ctr_ratios"]) == 5
    checkpoint = Checkpoint(
        name="esmm",
        kind="esmm_debiased",
        model_params=params,
        spec=SPEC,
        state_dict=model.state_dict(),
        position=position,
    )
    export_checkpoint(checkpoint, tmp_path)
    manifest = read_manifest(tmp_path, "esmm", 1)
    assert manifest.position == position and manifest.regime == "slot1"
    assert manifest.metrics["export_parity_max_abs_diff"] <= PARITY_TOLERANCE
    graph = onnx.load(str(tmp_path / "esmm" / "1" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["categorical", "numeric"]  # b is not an input
    run = optimized_op_types(tmp_path / "esmm" / "1" / "model.onnx", tmp_path)
    assert not (PER_ROW_BYPASS_OPS | {"Tanh"}) & run  # the slot-1 bypass term folded to one number (towers: Relu)
    # matrices of more than one element (the slot-1 bypass term leaves a folded (1, 1) constant)
    weights = sum(size for i in graph.initializer if len(i.dims) > 1 and (size := int(np.prod(i.dims))) > 1)
    adversary = sum(p.numel() for n, p in model.named_parameters() if n.startswith("adversary") and p.dim() > 1)
    served = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("adversary") and p.dim() > 1)
    assert weights <= served and (lam == 0.0) == (adversary == 0)


def test_a_position_blind_model_records_the_logged_regime():
    assert position_summary(ESMM(SPEC, ESMMConfig(**SMALL)), logged_batch()) == {"regime": "logged"}
    with pytest.raises(ValueError, match="position_bypass"):
        DebiasedESMMConfig(position_bypass=False)


def test_position_aware_propensity_is_the_ctr_tower_at_the_logged_position():
    torch.manual_seed(0)
    model = IPSCVR(SPEC, IPSCVRConfig(position_bypass=True, propensity_floor=1e-6, **SMALL))
    data = logged_batch()
    model.fix_constants(data)
    with torch.no_grad():
        model.bypass.w_by.weight.fill_(2.0)  # a visible slot effect
        ctr_logit, _ = model.batch_logits(data)
        weights = model.click_weights(data, ctr_logit)
        at_slot1, _ = model.logits(data["categorical"], data["numeric"])
    clicked = data["click"].bool()
    expected = 1.0 / torch.sigmoid(ctr_logit)
    torch.testing.assert_close(weights[clicked], expected[clicked])
    assert not torch.allclose(ctr_logit, at_slot1)  # the propensity depends on the position


def test_oracle_propensity_uses_the_true_click_probability_and_is_required():
    model = ESCM2(SPEC, ESCM2Config(propensity="oracle", propensity_floor=0.05, **SMALL))
    data = logged_batch()
    with pytest.raises(ValueError, match="oracle_propensity"):
        model.loss(data)
    data["oracle_propensity"] = torch.linspace(0.01, 0.9, 256)
    weights = model.click_weights(data, torch.zeros(256))
    expected = data["click"].float() / data["oracle_propensity"].clamp(min=0.05)
    torch.testing.assert_close(weights, expected)
    assert torch.isfinite(model.loss(data))


def test_direct_imputation_has_its_own_input_and_the_label_as_target():
    torch.manual_seed(0)
    direct = ESCM2(SPEC, ESCM2Config(estimator="dr", **SMALL))
    error = ESCM2(SPEC, ESCM2Config(estimator="dr", imputation="error", **SMALL))
    assert direct.imputation_embedding is not None and error.imputation_embedding is None
    data = logged_batch()
    direct.loss(data).backward()
    assert float(direct.imputation_embedding.table.weight.grad.abs().sum()) > 0.0
    ctr_logit, cvr_logit = direct.batch_logits(data)
    _, imputation_loss = direct.doubly_robust_risk(data, ctr_logit, cvr_logit)
    click = data["click"].float()
    logit = direct.imputation_tower(direct.imputation_embedding(data["categorical"], data["numeric"]))
    fit = torch.nn.functional.binary_cross_entropy_with_logits(logit, data["conversion"].float(), reduction="none")
    torch.testing.assert_close(imputation_loss, (click * fit).sum() / click.sum())


def test_the_ratios_are_listed_by_slot_up_to_the_first_slot_never_shown(caplog):
    """The ratios of the positions that occurred were listed in order: with slot 2 missing, slot 3's ratio
    was read as slot 2's and the last slot read none; a stray position 1000 took slot 6's place."""
    model, data = trained_debiased_esmm(SMALL)
    full = position_summary(model, data)["ctr_ratios"]
    gap = data["position"] != 2
    without_2 = {key: value[gap] for key, value in data.items()}
    assert position_summary(model, without_2)["ctr_ratios"] == [1.0]
    assert "position 2 has no impression in the training logs" in caplog.text
    stray = {**data, "position": torch.where(torch.arange(256) == 7, 1000, data["position"])}
    ratios = position_summary(model, stray)["ctr_ratios"]
    assert len(ratios) == 5 and ratios[0] == 1.0
    np.testing.assert_allclose(ratios, full, rtol=0.05)  # one row moved: the same slots, about the same ratios
    no_top = {key: value[data["position"] != 1] for key, value in data.items()}
    with pytest.raises(ValueError, match="no position-1 impression "):
        position_summary(model, no_top)


def test_ratios_learned_against_the_log_s_falling_click_rates_are_warned_of(caplog):
    """`ctr new`'s settings on a 40k-row log whose click rate fell from 0.122 at slot 1 to 0.026 at slot 5
    learned [1, 1.04, 1.13, 1.20, 1.32] for two seeds of four, and nothing said so (a data-scientist audit)."""
    assert inverted_slots([1.0, 1.042, 1.134, 1.198, 1.321], [1.0, 0.6, 0.4, 0.3, 0.209]) == [2, 3, 4, 5]
    assert inverted_slots([1.0, 0.7, 1.01], [1.0, 0.95, 0.5]) == [3]  # slot 2's log falls too little to tell
    assert inverted_slots([1.0, 0.5, 0.3], [1.0, 0.6, 0.4]) == []
    model, data = trained_debiased_esmm(SMALL)
    falling = (data["position"] == 1) | (torch.arange(256) % 7 == 0)  # slot 1: every row clicked, others 1 in 7
    data = {**data, "click": falling.to(data["click"].dtype)}
    with caplog.at_level(logging.WARNING):
        learned = position_summary(model, data)["ctr_ratios"]
        assert max(learned[1:]) < 1.0 and "position bypass learned" not in caplog.text  # it learned the fall
        with torch.no_grad():
            model.bypass.w_by.weight.neg_()  # the bypass's term turned around: lower slots learned to click more
        inverted = position_summary(model, data, "mine")["ctr_ratios"]
    assert min(inverted[1:]) > 1.0
    assert (
        "the position bypass learned slot ratios" in caplog.text and "`ctr evaluate mine --logs HELDOUT`" in caplog.text
    )
    assert 'set [model] bypass_start = "log"' in caplog.text  # the drawn start's measured fix, not "train longer"
    caplog.clear()
    model.config.bypass_start = "log"  # a bypass started at the log's fall and trained away from it
    with caplog.at_level(logging.WARNING):
        position_summary(model, data, "mine")
    assert "it started from bypass_start = 'log' and its training moved it there" in caplog.text
    assert "set [model]" not in caplog.text
    caplog.clear()
    model.config.bypass_start, model.bypass_started = "explored", {"asked": "explored", "used": "log"}  # fell back
    with caplog.at_level(logging.WARNING):
        position_summary(model, data, "mine")
    assert "it started from bypass_start = 'log'" in caplog.text  # the start it took, not the one asked for


def test_the_slot_ratios_are_means_in_float64_the_same_at_one_and_two_threads():
    """model.json's ``ctr_ratios`` differed in their 7th digit between OMP_NUM_THREADS=1 and 2, model.onnx the
    same bytes: torch's float32 sigmoid and mean over RATIO_ROWS rows round by how the rows split between threads."""
    model, _ = trained_debiased_esmm(SMALL)
    data = logged_batch(rows=RATIO_ROWS)  # enough rows for torch to split an operation between threads
    with using_torch_threads(1):
        alone = position_summary(model, data)["ctr_ratios"]
    with using_torch_threads(2):
        assert position_summary(model, data)["ctr_ratios"] == alone
    with torch.no_grad():  # the ratios of the exactly rounded float64 sums of each slot's pCTRs
        slot_free = model.slot_free_logit(data["categorical"], data["numeric"])
        slots = listed_slots(position_ctr(data["position"].numpy(), data["click"].numpy()))
        logits = [slot_free + model.bypass_logit(torch.full((RATIO_ROWS,), ctr)) for ctr in slots]
    sums = [math.fsum(torch.sigmoid(logit.double()).tolist()) for logit in logits]
    np.testing.assert_allclose(alone, [total / sums[0] for total in sums], rtol=1e-13)
