"""The entire-space CVR methods: each owns its loss, answers pctr / pcvr / pctcvr, and exports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.repository import read_manifest, versions
from tests.support.debiased_esmm import SMALL
from tests.support.model_batches import SPEC, batch
from training.export import PARITY_TOLERANCE, export_checkpoint
from training.fitting.checkpoint import Checkpoint
from training.models.aman import AMAN
from training.models.base_cvr import BaseCVR
from training.models.division import Division
from training.models.escm2 import ESCM2
from training.models.ips_cvr import IPSCVR
from training.models.oversampling import Oversampling
from training.models.registry import build_model
from training.models.settings.aman import AMANConfig
from training.models.settings.escm2 import ESCM2Config
from training.models.settings.ips_cvr import IPSCVRConfig
from training.models.settings.oversampling import OversamplingConfig

KINDS = {
    "cvr_base": {},
    "cvr_oversampling": {"positive_copies": 3.0},
    "cvr_aman": {"negative_rate": 0.5},
    "division": {},
    "ips_cvr": {},
    "escm2_ips": {"estimator": "ips"},
    "escm2_dr": {"estimator": "dr"},
}


def model_of(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name.split("_")[0] if name.startswith("escm2") else name, SPEC, {**SMALL, **KINDS[name]})


def cvr_gradient(model: torch.nn.Module, data: dict) -> float:
    model.zero_grad()
    model.loss(data).backward()
    tower = model.ctcvr_tower if isinstance(model, Division) else model.cvr_tower
    return float(tower.mlp[0].weight.grad.abs().sum())


@pytest.mark.parametrize("name", list(KINDS))
def test_every_method_answers_the_three_probabilities(name):
    model = model_of(name).eval()
    data = batch(128)
    out = model(data["categorical"], data["numeric"])
    assert tuple(out) == model.output_names == ("pctr", "pcvr", "pctcvr")
    for value in out.values():
        assert value.shape == (128,) and ((value >= 0) & (value <= 1)).all()
    if name == "division":
        expected = (out["pctcvr"] / out["pctr"]).clamp(max=1.0)
        torch.testing.assert_close(out["pcvr"], expected)
    else:
        torch.testing.assert_close(out["pctcvr"], out["pctr"] * out["pcvr"])


@pytest.mark.parametrize("name", list(KINDS))
def test_every_method_trains_and_reports_metrics(name):
    model = model_of(name)
    data = batch(128, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(1)
    first = model.loss(data).item()
    for _ in range(20):
        optimizer.zero_grad()
        model.loss(data).backward()
        optimizer.step()
    torch.manual_seed(1)
    assert np.isfinite(first) and model.loss(data).item() < first
    with torch.no_grad():
        predictions = {k: v.numpy() for k, v in model.eval()(data["categorical"], data["numeric"]).items()}
    labels = {"click": data["click"].numpy(), "conversion": data["conversion"].numpy()}
    assert set(model.metrics(predictions, labels)) >= {"ctr_auc", "ctcvr_auc", "cvr_auc_clicked"}


@pytest.mark.parametrize("name", list(KINDS))
def test_every_method_exports_with_parity_and_no_train_only_part(name, tmp_path):
    model = model_of(name)
    kind = "escm2" if name.startswith("escm2") else name
    params = {**SMALL, **KINDS[name]}
    checkpoint = Checkpoint(name=name, kind=kind, model_params=params, spec=SPEC, state_dict=model.state_dict())
    assert export_checkpoint(checkpoint, tmp_path) == 1 and versions(tmp_path, name) == [1]
    manifest = read_manifest(tmp_path, name, 1)
    assert [o.name for o in manifest.outputs] == ["pctr", "pcvr", "pctcvr"]
    assert manifest.metrics["export_parity_max_abs_diff"] <= PARITY_TOLERANCE
    if name == "escm2_dr":  # the imputation tower is train-only: the graph has no weight of it
        import onnx

        from training.precise_sigmoid import ONE

        graph = onnx.load(str(tmp_path / name / "1" / "model.onnx")).graph
        sizes = sorted(int(np.prod(i.dims)) for i in graph.initializer if i.name != ONE)  # the Sigmoid's 1
        torch_sizes = sorted(p.numel() for n, p in model.named_parameters() if not n.startswith("imputation"))
        assert sizes == torch_sizes


def test_base_learns_cvr_from_clicked_impressions_only():
    model = BaseCVR(SPEC)
    data = batch(64)
    data["click"] = torch.zeros_like(data["click"])
    data["conversion"] = torch.zeros_like(data["conversion"])
    assert cvr_gradient(model, data) == 0.0
    assert model.ctr_embedding is not model.cvr_embedding  # BASE's CVR model shares nothing with CTR


def test_oversampling_counts_clicked_conversions_k_times():
    model = Oversampling(SPEC, OversamplingConfig(positive_copies=4.0))
    data = {"click": torch.tensor([1, 1, 0, 1]), "conversion": torch.tensor([1, 0, 0, 1])}
    assert model.cvr_weights(data).tolist() == [4.0, 1.0, 0.0, 4.0]


def test_aman_takes_sampled_unclicked_impressions_as_negatives():
    model = AMAN(SPEC, AMANConfig(negative_rate=1.0))
    data = batch(64)
    data["click"] = torch.zeros_like(data["click"])
    data["conversion"] = torch.zeros_like(data["conversion"])
    assert model.cvr_weights(data).tolist() == [1.0] * 64
    assert cvr_gradient(model, data) > 0.0
    torch.manual_seed(0)
    share = AMAN(SPEC, AMANConfig(negative_rate=0.2)).cvr_weights(batch(4000)).mean().item()
    assert 0.3 < share < 0.7  # about half the rows are clicked, 20% of the rest drawn


def ips_terms(self_normalize: bool) -> tuple[IPSCVR, dict, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(model, batch, its CTR loss, clicks, floored propensities, per-row CVR errors) of an IPS-CVR model whose
    propensity floor is 0.2: the terms its loss is built from, computed by hand."""
    model = IPSCVR(SPEC, IPSCVRConfig(propensity_floor=0.2, self_normalize=self_normalize, **SMALL))
    data = batch(64)
    ctr_logit, cvr_logit = model.logits(data["categorical"], data["numeric"])
    click = data["click"].float()
    p = torch.sigmoid(ctr_logit).clamp(min=0.2)
    error = F.binary_cross_entropy_with_logits(cvr_logit, data["conversion"].float(), reduction="none")
    return model, data, F.binary_cross_entropy_with_logits(ctr_logit, click), click, p, error


def test_ips_weights_clicked_errors_by_inverse_propensity():
    model, data, ctr_loss, click, p, error = ips_terms(self_normalize=False)
    torch.testing.assert_close(model.loss(data), ctr_loss + (click * error / p).mean())


def test_self_normalised_ips_divides_the_weighted_errors_by_the_sum_of_the_weights():
    """SNIPS (``self_normalize = true``, what ips_cvr, escm2_ips and escm2_dr ship): the weighted CVR errors
    over sum(o / p), not over N; the exact loss above only pinned the N form."""
    model, data, ctr_loss, click, p, error = ips_terms(self_normalize=True)
    expected = ctr_loss + (click * error / p).sum() / (click / p).sum()
    assert not torch.isclose((click / p).sum(), torch.tensor(64.0))  # the two forms differ here
    torch.testing.assert_close(model.loss(data), expected)


@pytest.mark.parametrize("imputation", ["direct", "error"])
def test_self_normalised_dr_risk_divides_the_correction_by_the_sum_of_the_weights(imputation):
    """ESCM²-DR with ``self_normalize = true``: L_CVR^DR = mean(e_hat) + sum(o (e - e_hat) / p) / sum(o / p),
    and the "error" imputation's loss sum(o (e - e_hat_s)^2 / p) / sum(o / p); the tests
    pinned only these risks' gradients, never their values (the default self_normalize went unpinned)."""
    model = ESCM2(SPEC, ESCM2Config(estimator="dr", imputation=imputation, self_normalize=True, **SMALL))
    data = batch(64)
    ctr_logit, cvr_logit = model.batch_logits(data)
    click = data["click"].float()
    w = click / torch.sigmoid(ctr_logit).clamp(min=model.config.propensity_floor)
    categorical, numeric = data["categorical"], data["numeric"]
    embedded = (
        model.imputation_embedding(categorical, numeric)
        if imputation == "direct"
        else model.cvr_embedding(categorical, numeric)
    )
    imputed = torch.sigmoid(model.imputation_tower(embedded))
    error = F.binary_cross_entropy_with_logits(cvr_logit, data["conversion"].float(), reduction="none")
    imputed_error = F.binary_cross_entropy_with_logits(cvr_logit, imputed, reduction="none")
    risk, imputation_loss = model.doubly_robust_risk(data, ctr_logit, cvr_logit)
    torch.testing.assert_close(risk, imputed_error.mean() + (w * (error - imputed_error)).sum() / w.sum())
    if imputation == "error":
        log_p, log_not_p = F.logsigmoid(cvr_logit), F.logsigmoid(-cvr_logit)
        fit = -(imputed * log_p + (1.0 - imputed) * log_not_p)
        torch.testing.assert_close(imputation_loss, (w * (error - fit) ** 2).sum() / w.sum())


def test_ips_gives_unclicked_impressions_no_cvr_gradient_but_dr_does():
    data = batch(64)
    data["click"] = torch.zeros_like(data["click"])
    data["conversion"] = torch.zeros_like(data["conversion"])
    ips = ESCM2(SPEC, ESCM2Config(estimator="ips", ctcvr_weight=0.0, **SMALL))
    dr = ESCM2(SPEC, ESCM2Config(estimator="dr", ctcvr_weight=0.0, **SMALL))
    assert cvr_gradient(ips, data) == 0.0
    assert cvr_gradient(dr, data) > 0.0  # the imputed error reaches every impression
    assert dr.imputation_tower.mlp[0].weight.grad is not None
    assert not hasattr(ips, "imputation_tower")


@pytest.mark.parametrize("estimator", ["ips", "dr"])
def test_the_cvr_risk_gives_the_ctr_tower_no_gradient_through_the_propensity(estimator):
    """The propensity 1 / pCTR is detached: the CTR tower learns from clicks only. Through the weights, the CVR
    risk would push pCTR wherever it makes the weighted CVR loss smaller (the weights are no longer the
    propensities they stand for)."""
    model = ESCM2(SPEC, ESCM2Config(estimator=estimator, **SMALL))
    data = batch(64)
    ctr_logit, cvr_logit = model.batch_logits(data)
    ctr_logit = ctr_logit.detach().requires_grad_()
    risk = (
        model.doubly_robust_risk(data, ctr_logit, cvr_logit)[0]
        if estimator == "dr"
        else model.cvr_risk(data, ctr_logit, cvr_logit)
    )
    assert torch.autograd.grad(risk, ctr_logit, allow_unused=True) == (None,)
    assert torch.autograd.grad(risk, cvr_logit)[0].abs().sum() > 0


@pytest.mark.parametrize("imputation", ["direct", "error"])
def test_the_dr_risk_gives_the_imputation_tower_no_gradient(imputation):
    """DR's imputed error e_hat = BCE(s, pCVR) holds s fixed: the imputation tower learns from its own loss
    only. Through the DR risk it would be pulled towards whatever s makes the CVR risk smallest, not towards
    the conversions it imputes."""
    model = ESCM2(SPEC, ESCM2Config(estimator="dr", imputation=imputation, **SMALL))
    data = batch(64)
    ctr_logit, cvr_logit = model.batch_logits(data)
    risk, imputation_loss = model.doubly_robust_risk(data, ctr_logit, cvr_logit)
    tower = list(model.imputation_tower.parameters())
    assert torch.autograd.grad(risk, tower, allow_unused=True, retain_graph=True) == (None,) * len(tower)
    assert torch.autograd.grad(imputation_loss, tower[0])[0].abs().sum() > 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: OversamplingConfig(positive_copies=0.5),
        lambda: AMANConfig(negative_rate=0.0),
        lambda: IPSCVRConfig(propensity_floor=0.0),
        lambda: ESCM2Config(estimator="snips"),
        lambda: ESCM2Config(ctcvr_weight=-1.0),
    ],
)
def test_invalid_method_settings_say_what_is_wrong(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("imputation", ["direct", "error"])
def test_the_imputation_tower_starts_at_the_clicked_rows_conversion_log_odds(imputation):
    """The imputed conversion probability s starts where the CVR tower does, at the training clicks' conversion
    rate: from a 0 offset (s = 0.5 against a few percent) the DR risk's first steps pull pCVR towards one half on
    every unclicked impression."""
    model = ESCM2(SPEC, ESCM2Config(estimator="dr", imputation=imputation, **SMALL))
    data = batch(64)
    model.fix_constants(data)
    click, conversion = data["click"].double(), data["conversion"].double()
    cvr = float((click * conversion).sum() / click.sum())
    assert model.imputation_tower.mlp[-1].bias.item() == pytest.approx(math.log(cvr / (1 - cvr)), rel=1e-5)
