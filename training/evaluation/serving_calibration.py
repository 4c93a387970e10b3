"""``ctr evaluate serving``: what a running service's ``/v1/score`` answers, against the world's truth.

Clients get three numbers per candidate, all for the top slot (README, API): pctr = P(click | x,
slot 1), pctcvr = P(click and convert | x, slot 1), pcvr = P(convert | click, x). This command checks
them the way a client meets them: it draws a held-out world day displayed uniformly at random (the
world and held-out settings of the served ``ctcvr`` model's ``config.toml``), sends each of its ad
requests, one request per call, to ``POST /v1/score`` over HTTP (``ScoringClient``, clients/client/:
a 503's ``Retry-After`` is waited out, a refusal is its ``ServiceError``), and compares the answers with the
world's true probabilities at slot 1. It never opens the ONNX files: what is measured is what the
service serves, role pairing and pcvr formation included.

Reported, overall and per decile of the true CTR: mean served / mean true and the expected
calibration error of pCTR, pCTCVR and pCVR; the entire-space AUC of pCVR (labels: whether each
impression would have converted had it been clicked) and of pCTCVR (labels: a click drawn at slot 1
and that potential). A reliability diagram (PNG) goes beside the JSON.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from clients.client import ScoringClient, require_ready
from training.config_world import world_spec
from training.evaluation.metrics import auc, binned_means, equal_count_bins, expected_calibration_error
from training.evaluation.world_heldout import heldout_day, slot1_clicks
from training.figure_file import save_figure
from training.logs.column_arrays import column_array, feature_columns
from training.model_config import ModelConfig

logger = logging.getLogger(__name__)

CLICK_STREAM = 1_804_07931  # seeds the slot-1 clicks that label pCTCVR's AUC
OUTPUTS = ("pctr", "pctcvr", "pcvr")
DECILES = 10
RELIABILITY_BINS = 10
HTTP_TIMEOUT_S = 30.0  # httpx's, for each phase of one /v1/score call (a held-out day's requests are small)


def score_requests(table: Any, spec: Any) -> Iterator[tuple[int, int, dict[str, Any], list[dict[str, Any]]]]:
    """(first row, row count, context, candidates) per ad request of a world table, in order."""
    columns = {name: values.tolist() for name, values in feature_columns(table, spec).items()}
    context = [f.name for f in spec.features if f.side == "context" and f.name in columns]
    candidate = [f.name for f in spec.features if f.side == "candidate" and f.name in columns]
    ids = column_array(table, "request_id")
    starts = [*np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]).tolist(), len(ids)]
    for start, stop in itertools.pairwise(starts):
        candidates = [{name: columns[name][row] for name in candidate} for row in range(start, stop)]
        yield start, stop - start, {name: columns[name][start] for name in context}, candidates


def score_over_http(client: ScoringClient, table: Any, spec: Any, workers: int) -> dict[str, np.ndarray]:
    """Every row's served pctr / pctcvr / pcvr, one /v1/score call per ad request, ``workers`` at once
    (``client`` holds as many connections)."""
    served = {name: np.full(table.num_rows, np.nan) for name in OUTPUTS}

    def run(worker: int) -> None:
        for index, (start, count, context, candidates) in enumerate(score_requests(table, spec)):
            if index % workers != worker:
                continue
            scores = client.score(context, candidates).scores  # one per candidate (else ValueError)
            for name in OUTPUTS:
                served[name][start : start + count] = [getattr(score, name) for score in scores]

    with ThreadPoolExecutor(workers) as pool:
        for result in [pool.submit(run, w) for w in range(workers)]:
            result.result()
    return served


def truth(table: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(true probabilities at slot 1, binary labels for the AUCs) per row."""
    true_ctr, true_cvr = column_array(table, "true_ctr"), column_array(table, "true_cvr")
    potential = column_array(table, "conversion_potential").astype(bool)
    clicks = slot1_clicks(true_ctr, CLICK_STREAM)
    probabilities = {"pctr": true_ctr, "pctcvr": true_ctr * true_cvr, "pcvr": true_cvr}
    return probabilities, {"pcvr": potential, "pctcvr": clicks & potential, "pctr": clicks}


def calibration(served: dict[str, np.ndarray], true: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict:
    report: dict[str, Any] = {}
    for name in OUTPUTS:
        report[name] = {
            "mean_served": float(served[name].mean()),
            "mean_true_slot1": float(true[name].mean()),
            "mean_served_over_true": float(served[name].mean() / true[name].mean()),
            "calibration_error": expected_calibration_error(served[name], true[name]),
            "auc_entire_space": auc(labels[name], served[name]),
            "auc_of_the_truth": auc(labels[name], true[name]),  # the ceiling
        }
    return report


def reliability(served: np.ndarray, true: np.ndarray, bins: int = RELIABILITY_BINS) -> dict[str, list[float]]:
    """Mean served and mean true probability in equal-count bins of the served one."""
    served_means, true_means = binned_means(served, true, bins)
    return {"served": served_means, "true": true_means}


def _versions_not_in(root: Path, roles: dict[str, Any]) -> list[str]:
    """The served role models' versions ``root`` does not hold ("esmm version 3"): a sign the repository read
    for the world is not the one the service serves."""
    from common.repository import versions

    served = sorted({(m.name, m.version) for m in roles.values() if m.version is not None})
    return [f"{name} version {version}" for name, version in served if version not in versions(root, name)]


def evaluate_serving(url: str, root: Path, world_model: str | None = None, workers: int = 4) -> dict[str, Any]:
    """The report of ``ctr evaluate serving``: ValueError naming ``url`` where no service answers there or it
    is not ready; ``ServiceError`` (clients/client/) for a call it refuses, httpx's errors for one that fails."""
    require_ready(url)  # a malformed URL, nothing there or a role's model not loaded: one line, before any work
    with ScoringClient(url, timeout_s=HTTP_TIMEOUT_S, max_connections=workers) as client:
        roles = {role: m for m in client.models() for role in m.roles}
        world_name = world_model or roles["ctcvr"].name
        try:
            config = ModelConfig.load(root, world_name)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"the service serves {world_name!r}, whose world this reads from {root / world_name / 'config.toml'}, "
                "which is absent: pass -r with the model repository the service serves"
            ) from None
        unheld = _versions_not_in(root, roles)
        if unheld:
            logger.warning(
                "%s holds no %s: the held-out day is drawn from the world of %s, which may not be the world "
                "the served models were trained on (a model of another world scores as if miscalibrated)",
                root,
                ", ".join(unheld),
                root / world_name / "config.toml",
            )
        table = heldout_day(config)
        started = time.perf_counter()
        served = score_over_http(client, table, world_spec(config), workers)
        seconds = time.perf_counter() - started
    true, labels = truth(table)
    deciles = equal_count_bins(true["pctr"], DECILES)  # tied truths kept in one (the true CTR is continuous)
    return {
        "url": url,
        "models": {
            role: {k: getattr(m, k) for k in ("name", "version", "kind", "position")}
            for role, m in sorted(roles.items())
        },
        "world_config": config.name,
        "repository": str(root),
        "world": config.world,  # the config's [world] overrides of the simulator's defaults
        "versions_not_in_repository": unheld,
        "heldout_policy": config.data.heldout_policy,
        "heldout_requests": config.data.heldout_requests,
        "heldout_seed": config.data.heldout_seed,
        "n_requests": len(np.unique(column_array(table, "request_id"))),
        "n_impressions": int(table.num_rows),
        "http_seconds": seconds,
        "overall": calibration(served, true, labels),
        "pctcvr_equals_pctr_times_pcvr_max_abs": float(
            np.max(np.abs(served["pctcvr"] - served["pctr"] * served["pcvr"]))
        ),
        "by_true_ctr_decile": [
            {"true_ctr_range": [float(true["pctr"][d].min()), float(true["pctr"][d].max())]}
            | calibration(
                {k: v[d] for k, v in served.items()},
                {k: v[d] for k, v in true.items()},
                {k: v[d] for k, v in labels.items()},
            )
            for d in deciles
        ],
        "reliability": {name: reliability(served[name], true[name]) for name in OUTPUTS},
    }


def format_table(report: dict[str, Any]) -> str:
    lines = ["| quantity | served mean | truth at slot 1 | served / true | ECE | entire-space AUC (truth's) |"]
    lines.append("|---|---|---|---|---|---|")
    for name, m in report["overall"].items():
        lines.append(
            f"| {name} | {m['mean_served']:.4f} | {m['mean_true_slot1']:.4f} | {m['mean_served_over_true']:.3f} | "
            f"{m['calibration_error']:.4f} | {m['auc_entire_space']:.3f} ({m['auc_of_the_truth']:.3f}) |"
        )
    lines.append("")
    lines.append(
        "served / true by decile of the true CTR: "
        + "; ".join(
            f"{i + 1}: " + " ".join(f"{d[n]['mean_served_over_true']:.2f}" for n in OUTPUTS)
            for i, d in enumerate(report["by_true_ctr_decile"])
        )
        + "  (pctr pctcvr pcvr)"
    )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Reliability diagrams of pCTR, pCTCVR and pCVR against the truth at slot 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(OUTPUTS), figsize=(15, 4.8))
    for axis, name in zip(axes, OUTPUTS, strict=True):
        curve = report["reliability"][name]
        top = max(*curve["served"], *curve["true"]) * 1.05
        axis.plot(curve["served"], curve["true"], marker="o")
        axis.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1)
        ratio = report["overall"][name]["mean_served_over_true"]
        axis.set(xlim=(0, top), ylim=(0, top), xlabel=f"served {name} (bin mean)", ylabel="true at slot 1 (bin mean)")
        axis.set_title(f"{name}: served / true {ratio:.2f}")
    models = ", ".join(f"{role} = {m['name']} v{m['version']}" for role, m in report["models"].items())
    figure.suptitle(f"/v1/score over HTTP vs the world's truth ({report['n_impressions']} impressions; {models})")
    figure.tight_layout()
    save_figure(figure, path, dpi=110)
    plt.close(figure)
