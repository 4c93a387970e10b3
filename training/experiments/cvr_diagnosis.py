"""Why the served pCVR over-predicts on the entire space: experiments that could prove each explanation wrong.

The served ``esmm`` model (debiased ESMM) is trained on the service's world exactly as ``ctr train esmm``
trains it (``models/esmm/config.toml``: its world, logs, sizes and schedule); every other variant keeps
the config's world, logs and sizes and states its own setting in full, starting from the one served
before the interaction (``before``: 1 epoch, Adam 0.001, no interaction term), so that its label keeps
its meaning when the config changes. Each is scored on the config's held-out day (uniformly random
display), where the world knows every impression's true CVR:

- ``served``: the repository config as it is;
- ``untrained``: the towers' output offsets at the training log-odds and nothing learned, the baseline
  any "the tower stays near its offset" explanation is measured against;
- ``before``: the setting served before the interaction;
- ``cvr offset 0``: the CVR tower's output offset left at its random init (p about 0.5) instead of the
  clicked rows' CVR: if pCVR where clicks are few follows the offset, the tower barely moves there;
- ``oracle labels``: the same architecture with the CVR tower fitted by BCE(conversion potential, pCVR)
  on *every* impression (labels only the simulator has): the upper bound with no click selection;
- schedule variants (``epochs``, ``learning_rate``): does more fitting move pCVR towards the truth?
- ``interaction`` (and its schedules): the towers' explicit user-ad interaction term
  (``training/models/interaction.py``): does resolving the user-ad affinity move pCVR to the truth?

Per variant: mean pCVR / mean true CVR overall, weighted by the true CTR (what a per-click buyer meets),
and per true-CTR decile; entire-space CVR AUC; pCTR / pCTCVR against the slot-1 truth; the mean |change
of the CVR logit| from the untrained model per decile; and the per-row gradient of the training loss
on the CVR logit per true-CTR decile of the training rows (how much of the entire-space loss reaches
the CVR tower where clicks are few). Beside them, from the world alone, ``resolution_bound``: the mean
pCVR / true a pCVR calibrated on clicks would serve if it resolved only the cells of a few features,
or everything but the user's own latent offset from the segment (``segment_bound``) (docs/cvr.md,
"Why the one-pass pCVR was x1.6 over impressions").
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from common.encoder import FeatureEncoder, fit_statistics
from training.evaluation.metrics import auc
from training.experiments.settings.cvr_diagnosis import BEFORE_MODEL, VARIANTS, DiagnosisConfig
from training.experiments.summary import mean_std, plus_minus
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit, predict
from training.logs.column_arrays import column_array, feature_columns
from training.model_config import ModelConfig
from training.models.esmm import ESMM
from training.models.parts import product_bce
from training.models.registry import build_model

logger = logging.getLogger(__name__)

DECILES = 10
# what a click-conditional pCVR that resolves only these features' cells would serve (resolution_bound)
RESOLUTIONS = (
    (),
    ("user_segment",),
    ("ad_category",),
    ("ad_id",),
    ("user_id",),
    ("user_segment", "ad_category"),
    ("user_segment", "advertiser_id"),
    ("user_segment", "ad_id"),
    ("user_id", "ad_id"),
)
SEGMENT_SAMPLES = 32  # users of the segment the segment_bound averages over
GRADIENT_ROWS = 100_000  # training rows the per-decile gradients are measured on


class DiagnosisESMM(torch.nn.Module):
    """An ESMM trained under one of the diagnosis objectives (inference path unchanged):

    - ``esmm``: its own loss and offsets;
    - ``offset0``: its own loss, but the CVR tower's output offset left at its random init;
    - ``oracle``: the CTR tower as usual, the CVR tower by BCE(conversion potential, pCVR) on every row.
    """

    def __init__(self, esmm: ESMM, objective: str) -> None:
        super().__init__()
        self.esmm = esmm
        self.objective = objective
        self.output_names = esmm.output_names

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.esmm(categorical, numeric)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.objective != "oracle":
            return self.esmm.loss(batch)
        ctr_logit, cvr_logit = self.esmm.batch_logits(batch)
        ctr = F.binary_cross_entropy_with_logits(ctr_logit, batch["click"].float())
        return ctr + F.binary_cross_entropy_with_logits(cvr_logit, batch["potential"].float())

    def fix_constants(self, tensors: dict[str, torch.Tensor]) -> None:
        initial = float(self.esmm.cvr_tower.mlp[-1].bias.detach())
        self.esmm.fix_constants(tensors)
        if self.objective == "offset0":
            self.esmm.cvr_tower.start_at(initial)

    metrics = staticmethod(ESMM.metrics)


def cvr_logit_gradients(model: ESMM, tensors: dict[str, torch.Tensor], objective: str) -> np.ndarray:
    """(rows,) d(sum of the training loss)/d(CVR logit) per row: what each row pushes into the CVR tower."""
    model.eval()
    ctr_logit, cvr_logit = model.batch_logits(tensors)
    ctr_logit, cvr_logit = ctr_logit.detach(), cvr_logit.detach().requires_grad_(True)
    click = tensors["click"].float()
    if objective == "oracle":
        loss = F.binary_cross_entropy_with_logits(cvr_logit, tensors["potential"].float(), reduction="sum")
    else:
        loss = product_bce(ctr_logit, cvr_logit, click * tensors["conversion"].float()) * click.numel()
    (gradient,) = torch.autograd.grad(loss, cvr_logit)
    model.train()
    return gradient.numpy()


def resolution_bound(table: Any, cells: tuple[str, ...]) -> float:
    """Mean over impressions of P(convert | click, cell) / mean true CVR, for cells of ``cells`` columns.

    P(convert | click, cell) = sum(true CTR * true CVR) / sum(true CTR) over the cell is what a pCVR
    trained on clicks (ESMM's CTCVR / CTR optimum) converges to when all it resolves of x is the cell;
    it exceeds the cell's mean CVR by Cov(CTR, CVR | cell) / mean CTR. () is no resolution at all."""
    true_ctr, true_cvr = column_array(table, "true_ctr"), column_array(table, "true_cvr")
    key = np.zeros(len(true_ctr), dtype=np.int64)
    for column in cells:
        codes = np.unique(column_array(table, column), return_inverse=True)[1].ravel()
        key = np.unique(key * (codes.max() + 1) + codes, return_inverse=True)[1].ravel()
    per_cell = np.bincount(key, true_ctr * true_cvr) / np.bincount(key, true_ctr)
    return float(per_cell[key].mean() / true_cvr.mean())


def segment_bound(world: Any, table: Any, samples: int = SEGMENT_SAMPLES, seed: int = 0) -> float:
    """``resolution_bound`` for a pCVR that knows everything of an impression (the ad, its latents, the
    hour, the user's device, age and segment) except the user's own latent offset from the segment: the
    mean over impressions of P(convert | click, all that) / mean true CVR, the user's latent averaged
    over ``samples`` users of the same segment (drawn by activity, as requests are). The finite-cell
    bounds above count each cell's few held-out impressions; this one integrates over the population."""
    from training.world.truth import click_logit, conversion_logit, sigmoid

    p, c = world.population, world.config
    users, ads = column_array(table, "user_idx"), column_array(table, "ad_idx")
    hour = column_array(table, "hour").astype(np.int64)
    base_ctr, base_cvr = click_logit(p, c, users, ads, hour), conversion_logit(p, c, users, ads)
    v, w = p.ad_latent[ads], p.ad_conv_latent[ads]
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(p.user_segment == s) for s in range(c.n_segments)]
    clicks, conversions = np.zeros(len(users)), np.zeros(len(users))
    for _ in range(samples):
        other = np.empty_like(users)
        for segment, ids in enumerate(members):
            rows = p.user_segment[users] == segment
            if rows.any():
                other[rows] = rng.choice(ids, size=int(rows.sum()), p=p.user_activity[ids] / p.user_activity[ids].sum())
        delta = p.user_latent[other] - p.user_latent[users]  # (R, D): this draw's latent minus the user's
        uv, uw = np.einsum("rd,rd->r", delta, v), np.einsum("rd,rd->r", delta, w)
        ctr = sigmoid(base_ctr + c.alpha * uv)
        clicks += ctr
        conversions += ctr * sigmoid(base_cvr + c.beta * uw + c.rho * uv)
    return float((conversions / clicks).mean() / column_array(table, "true_cvr").mean())


def decile_index(values: np.ndarray) -> np.ndarray:
    edges = np.quantile(values, np.linspace(0, 1, DECILES + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def heldout_metrics(table: Any, outputs: dict[str, np.ndarray], untrained_logit: np.ndarray) -> dict[str, Any]:
    true_ctr, true_cvr = column_array(table, "true_ctr"), column_array(table, "true_cvr")
    pcvr = outputs["pcvr"].astype(np.float64)
    decile = decile_index(true_ctr)
    logit = np.log(pcvr / (1 - pcvr))
    per_decile = []
    for d in range(DECILES):
        rows = decile == d
        per_decile.append(
            {
                "true_ctr_mean": float(true_ctr[rows].mean()),
                "pcvr_mean": float(pcvr[rows].mean()),
                "true_cvr_mean": float(true_cvr[rows].mean()),
                "pcvr_over_true": float(pcvr[rows].mean() / true_cvr[rows].mean()),
                "cvr_logit_moved": float(np.abs(logit[rows] - untrained_logit[rows]).mean()),
            }
        )
    potential = column_array(table, "conversion_potential").astype(bool)
    return {
        "pcvr_over_true": float(pcvr.mean() / true_cvr.mean()),
        "pcvr_over_true_ctr_weighted": float((true_ctr * pcvr).sum() / (true_ctr * true_cvr).sum()),
        "cvr_auc_entire_space": auc(potential, pcvr),
        "pctr_slot1_over_true": float(outputs["pctr"].mean() / true_ctr.mean()),
        "pctcvr_slot1_over_true": float(outputs["pctcvr"].mean() / (true_ctr * true_cvr).mean()),
        "ctr_auc_vs_true_ctr_top_half": auc(true_ctr > np.median(true_ctr), outputs["pctr"]),
        "by_true_ctr_decile": per_decile,
    }


def gradient_summary(gradient: np.ndarray, true_ctr: np.ndarray) -> dict[str, Any]:
    decile = decile_index(true_ctr)
    magnitude = [float(np.abs(gradient[decile == d]).mean()) for d in range(DECILES)]
    return {
        "mean_abs_by_true_ctr_decile": magnitude,
        "lowest_over_highest_decile": magnitude[0] / magnitude[-1],
    }


def build(config: ModelConfig, spec: Any, objective: str, overrides: dict[str, Any], seed: int) -> torch.nn.Module:
    model = build_model(config.kind, spec, {**config.model, **overrides}, seed=seed)
    return model if objective in ("esmm", "untrained") else DiagnosisESMM(model, objective)


def run_cvr_diagnosis(root: Path, config: DiagnosisConfig) -> dict[str, Any]:
    """The report of ``ctr experiment cvr-diagnosis``."""
    from training.config_world import world_of, world_settings
    from training.world import feature_spec

    started = time.perf_counter()
    model_config = ModelConfig.load(root, config.model)
    data = model_config.data
    days = config.days or data.days
    per_day = config.requests_per_day or data.requests_per_day
    world = world_of(model_config)
    logs = world.simulate(days=days, requests_per_day=per_day, policy=data.policy, seed=data.seed)
    heldout = world.simulate(days=1, requests_per_day=config.heldout_requests, policy="uniform", seed=data.heldout_seed)
    raw_spec = feature_spec(world.config)
    spec = fit_statistics(raw_spec, feature_columns(logs, raw_spec))
    encoder = FeatureEncoder(spec)
    train, test = ImpressionTensors.from_table(logs, encoder), ImpressionTensors.from_table(heldout, encoder)
    train.tensors["potential"] = torch.from_numpy(column_array(logs, "conversion_potential").astype(np.int64))
    sample = {k: v[:GRADIENT_ROWS] for k, v in train.tensors.items()}
    sample_ctr = column_array(logs, "true_ctr")[:GRADIENT_ROWS]
    training = replace(model_config.training, validation_fraction=0.0)
    report: dict[str, Any] = {
        "config": {**vars(config), "days": days, "requests_per_day": per_day},
        "repository": str(root),
        # the model's config.toml as it ran (the variants override its [model], the options its [data])
        "model_config": {
            "kind": model_config.kind,
            "model": model_config.model,
            "training": asdict(model_config.training),
            "data": asdict(data),
            "world": world_settings(model_config),
        },
        "training_impressions": len(train),
        "resolution_bound": {" x ".join(cells) or "none": resolution_bound(heldout, cells) for cells in RESOLUTIONS}
        | {"everything but the user's own latent": segment_bound(world, heldout)},
        "variants": {},
    }
    for seed in config.seeds:
        untrained = build(model_config, spec, "esmm", BEFORE_MODEL, seed)
        untrained.fix_constants(train.tensors)
        untrained_pcvr = predict(untrained, test)["pcvr"].astype(np.float64)
        untrained_logit = np.log(untrained_pcvr / (1 - untrained_pcvr))
        for label in config.variants:
            overrides, schedule, objective = VARIANTS[label]
            begun = time.perf_counter()
            model = build(model_config, spec, objective, overrides, seed)
            if objective == "untrained":
                model.fix_constants(train.tensors)
            else:
                fit(model, train, replace(training, seed=seed, **schedule), progress=False)
            esmm = model.esmm if isinstance(model, DiagnosisESMM) else model
            result = heldout_metrics(heldout, predict(model, test), untrained_logit)
            gradient_objective = "oracle" if objective == "oracle" else "esmm"
            result["cvr_logit_gradient"] = gradient_summary(
                cvr_logit_gradients(esmm, sample, gradient_objective), sample_ctr
            )
            result["seconds"] = time.perf_counter() - begun
            report["variants"].setdefault(label, []).append(result)
            logger.info(
                "seed %d %-20s pCVR/true %.3f (ctr-weighted %.3f) lowest decile %.2f AUC %.4f pCTCVR@1 %.3f %.0fs",
                seed,
                label,
                result["pcvr_over_true"],
                result["pcvr_over_true_ctr_weighted"],
                result["by_true_ctr_decile"][0]["pcvr_over_true"],
                result["cvr_auc_entire_space"],
                result["pctcvr_slot1_over_true"],
                result["seconds"],
            )
    report["seconds"] = time.perf_counter() - started
    return report


def _mean(runs: list[dict[str, Any]], key: str) -> str:
    return plus_minus(mean_std([run[key] for run in runs]), 3)


def format_table(report: dict[str, Any]) -> str:
    """One row per variant (mean ± std over seeds), then the resolution bounds."""
    lines = [
        "| variant | pCVR / true | CTR-weighted | lowest-CTR decile | highest | CVR AUC | pCTR@1 / true |"
        " pCTCVR@1 / true | CVR-logit grad., lowest / highest decile |",
        "|---" * 9 + "|",
    ]
    for label, runs in report["variants"].items():
        lowest = [run["by_true_ctr_decile"][0]["pcvr_over_true"] for run in runs]
        highest = [run["by_true_ctr_decile"][-1]["pcvr_over_true"] for run in runs]
        gradient = [run["cvr_logit_gradient"]["lowest_over_highest_decile"] for run in runs]
        cells = [
            _mean(runs, "pcvr_over_true"),
            _mean(runs, "pcvr_over_true_ctr_weighted"),
            f"{np.mean(lowest):.2f}",
            f"{np.mean(highest):.2f}",
            _mean(runs, "cvr_auc_entire_space"),
            _mean(runs, "pctr_slot1_over_true"),
            _mean(runs, "pctcvr_slot1_over_true"),
            f"{np.mean(gradient):.3f}",
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "pCVR / true of a click-conditional pCVR resolving only: "
        + ", ".join(f"{cells} {ratio:.3f}" for cells, ratio in report["resolution_bound"].items())
    )
    return "\n".join(lines)
