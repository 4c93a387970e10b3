"""The ESAM ablation (Chen et al. 2020): does learning from non-displayed items lift the long tail?

For each seed, the world's retrieval view draws training queries and what the previous system
displayed for them, and four two-tower models train on the same data:

    baseline         L_s
    +L_DA            L_s + lambda_1 L_DA
    +L_DA+L_DC^c     L_s + lambda_1 L_DA + lambda_2 L_DC^c
    ESAM             L_s + lambda_1 L_DA + lambda_2 L_DC^c + lambda_3 L_DC^p

Each then ranks the whole catalog for held-out queries, scored by ``training.evaluation.retrieval_metrics``
against the true relevant sets, for all, hot and long-tail items. The seed varies the queries, the
exposure, the non-displayed samples and the initialisation; the world (users, ads) stays fixed.

The loss weights are not picked on those held-out queries: first a small sweep trains full ESAM with
each setting of ``ExperimentConfig.sweep`` on seed 0's data and scores it on a separate **validation**
draw of queries; the rule, fixed in advance (``choose_weights``), keeps the setting with the best
long-tail recall@50 among those whose hot recall@50 is at least 0.98x the baseline's on the same
validation queries (the best overall recall@50 if none is). The ablation then uses those weights.
Diagnostics beside it (seed 0): an untrained model's recall (what chance and the features alone
give); the baseline trained on logs whose candidates were drawn uniformly instead of by popularity
(what the same model reaches without exposure bias, on the same held-out queries); the domain gap
(L_DA between displayed and never-displayed catalog embeddings) of the baseline and of ESAM; and the
gradient norm each weighted loss term sends into the item tower after training (``loss_gradients``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.encoder import EncodedFeatures
from training.config_world import retrieval_view_of
from training.evaluation.retrieval_metrics import retrieval_metrics
from training.experiments.summary import STD_KIND, mean_std, plus_minus
from training.fitting.dataset import ImpressionTensors
from training.fitting.fit import fit
from training.fitting.settings import TrainingConfig
from training.models.esam import ESAM, correlation_alignment
from training.models.settings.esam import ESAMConfig
from training.retrieval_data import build_retrieval_data, encode_queries
from training.torch_threads import using_torch_threads
from training.world.retrieval import RetrievalView

logger = logging.getLogger(__name__)

VARIANTS = {  # name -> the loss weights it keeps (the others are 0)
    "baseline": (),
    "+L_DA": ("lambda_da",),
    "+L_DA+L_DC^c": ("lambda_da", "lambda_dc_c"),
    "ESAM": ("lambda_da", "lambda_dc_c", "lambda_dc_p"),
}
METRICS = ("recall@10", "recall@50", "ndcg@10", "ndcg@50")
GROUPS = ("all", "hot", "long_tail")
WEIGHTS = ("lambda_da", "lambda_dc_c", "lambda_dc_p")
# (lambda_1, lambda_2, lambda_3) of full ESAM tried on the validation queries: the weights the id
# world's tuning found (3, 0.03, 3), gentler ones down to a tenth of each, and the public code's defaults
SWEEP = (
    (3.0, 0.03, 3.0),
    (1.0, 0.01, 0.3),
    (1.0, 0.01, 0.03),
    (0.3, 0.003, 0.01),
    (100.0, 0.001, 0.001),
)
HOT_FLOOR = 0.98  # choose_weights: hot recall@50 kept at least this share of the baseline's


@dataclass
class ExperimentConfig:
    seeds: int = 3  # repetitions, seeds 0..seeds-1
    train_queries: int = 16_000  # training queries per seed (n_slots displayed items each)
    eval_queries: int = 2_000  # held-out queries ranking the whole catalog
    validation_queries: int = 1_000  # queries the weight sweep is scored on (never the held-out ones)
    n_targets: int = 10  # non-displayed items sampled per training query
    world: dict[str, Any] = field(default_factory=dict)  # WorldConfig overrides
    retrieval: dict[str, Any] = field(default_factory=dict)  # RetrievalConfig overrides ({"world": "ids"})
    model: dict[str, Any] = field(default_factory=dict)  # ESAMConfig overrides (the sweep sets the weights)
    sweep: list[tuple[float, float, float]] = field(default_factory=lambda: list(SWEEP))  # empty: model's
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(epochs=3, batch_size=256, learning_rate=3e-3, validation_fraction=0.0)
    )
    # torch intra-op threads: the towers are small, so one thread is about as fast alone, and on a
    # shared machine several threads spin-wait for each other (measured: 5x the CPU time)
    threads: int = 1

    @classmethod
    def quick(cls) -> ExperimentConfig:
        """A small world and few queries: seconds, for tests; the numbers mean little."""
        return cls(
            seeds=1,
            train_queries=600,
            eval_queries=100,
            validation_queries=100,
            sweep=[(3.0, 0.03, 3.0), (1.0, 0.01, 0.3)],
            world={"n_users": 500, "n_ads": 400, "n_advertisers": 60},
            retrieval={"n_candidates": 20, "n_slots": 5, "n_relevant": 20},
            model={"hidden": [16], "embedding_dim": 8, "feature_dim": 4},
            training=TrainingConfig(epochs=1, batch_size=64, validation_fraction=0.0),
        )


def variant_config(base: ESAMConfig, name: str) -> ESAMConfig:
    kept = VARIANTS[name]
    return replace(base, **{w: getattr(base, w) if w in kept else 0.0 for w in WEIGHTS})


@torch.no_grad()
def _embed(model: ESAM, categorical: np.ndarray, numeric: np.ndarray, tower: str) -> np.ndarray:
    model.eval()
    return getattr(model, tower)(torch.from_numpy(categorical), torch.from_numpy(numeric)).numpy()


class SeedData:
    """One seed's training data, and the catalog ranking metrics of a model for a set of queries."""

    def __init__(self, view: RetrievalView, config: ExperimentConfig, seed: int, targets: bool = True) -> None:
        self.view, self.config, self.seed = view, config, seed
        queries = view.queries(config.train_queries, seed)
        exposure = view.expose(queries, seed)
        self.data = build_retrieval_data(view, queries, exposure, config.n_targets, seed, targets)
        self.groups = {"all": np.ones(view.n_items, dtype=bool), "hot": view.hot, "long_tail": ~view.hot}
        self.held_out = self._query_set(config.eval_queries, 1_000_000 + seed)
        self.validation = self._query_set(config.validation_queries, 2_000_000 + seed)

    def _query_set(self, n: int, seed: int) -> tuple[EncodedFeatures, np.ndarray]:
        queries = self.view.queries(n, seed)
        return encode_queries(self.data.spec, self.view, queries), self.view.relevant_items(queries)

    def train(self, model_config: ESAMConfig) -> ESAM:
        torch.manual_seed(self.seed)
        model = ESAM(self.data.spec, model_config)
        fit(model, self.data.tensors, replace(self.config.training, seed=self.seed), progress=False)
        return model

    def evaluate(self, model: ESAM, validation: bool = False) -> tuple[dict, np.ndarray]:
        """(group -> metric -> value, (A, L) catalog embeddings) on the held-out or validation queries."""
        encoded, relevant = self.validation if validation else self.held_out
        items = _embed(model, self.data.catalog.categorical, self.data.catalog.numeric, "item_tower")  # (A, L)
        q = _embed(model, encoded.categorical, encoded.numeric, "query_tower")  # (Q, L)
        return retrieval_metrics(q @ items.T, relevant, self.groups), items


def choose_weights(baseline: dict, tried: list[dict]) -> dict:
    """The sweep's rule: best long-tail recall@50 with hot recall@50 >= HOT_FLOOR x the baseline's
    (validation queries); the best all-items recall@50 when no setting keeps hot recall."""
    floor = HOT_FLOOR * baseline["hot"]["recall@50"]
    keeping = [t for t in tried if t["validation"]["hot"]["recall@50"] >= floor]
    if keeping:
        return max(keeping, key=lambda t: t["validation"]["long_tail"]["recall@50"])
    return max(tried, key=lambda t: t["validation"]["all"]["recall@50"])


def run_sweep(seed_data: SeedData, base: ESAMConfig) -> dict[str, Any]:
    """Full ESAM for each weight setting, and the baseline, scored on the validation queries."""
    baseline, _ = seed_data.evaluate(seed_data.train(variant_config(base, "baseline")), validation=True)
    tried = []
    for weights in seed_data.config.sweep:
        started = time.perf_counter()
        setting = dict(zip(WEIGHTS, weights, strict=True))
        metrics, _ = seed_data.evaluate(seed_data.train(replace(base, **setting)), validation=True)
        tried.append({"weights": setting, "validation": metrics})
        logger.info(
            "sweep %s: long-tail recall@50 %.4f, hot %.4f (baseline %.4f, %.4f; %.0fs)",
            weights, metrics["long_tail"]["recall@50"], metrics["hot"]["recall@50"],
            baseline["long_tail"]["recall@50"], baseline["hot"]["recall@50"], time.perf_counter() - started,
        )  # fmt: skip
    chosen = choose_weights(baseline, tried) if tried else {"weights": {w: getattr(base, w) for w in WEIGHTS}}
    return {"baseline": baseline, "tried": tried, "chosen": chosen["weights"], "rule": choose_weights.__doc__}


def loss_gradients(model: ESAM, tensors: ImpressionTensors, batch_size: int, batches: int = 20) -> dict[str, float]:
    """Mean norm of the gradient each weighted loss term sends into the item tower's parameters."""
    model.train()
    c = model.config
    weight = {"l_s": 1.0, "l_da": c.lambda_da, "l_dc_c": c.lambda_dc_c, "l_dc_p": c.lambda_dc_p}
    parameters = [q for q in model.item_tower.parameters() if q.requires_grad]
    norms: dict[str, list[float]] = {name: [] for name in weight}
    generator = torch.Generator().manual_seed(0)
    for i, batch in enumerate(tensors.minibatches(batch_size, generator)):
        if i == batches:
            break
        terms = model.losses(batch)
        for name, term in terms.items():
            grads = torch.autograd.grad(weight[name] * term, parameters, retain_graph=True, allow_unused=True)
            norms[name].append(float(torch.sqrt(sum((g**2).sum() for g in grads if g is not None))))
    return {name: float(np.mean(values)) for name, values in norms.items()}


def domain_gap(items: np.ndarray, displayed: np.ndarray) -> float:
    """L_DA between the displayed and the never-displayed catalog items' embeddings (A, L)."""
    return float(correlation_alignment(torch.from_numpy(items[displayed]), torch.from_numpy(items[~displayed])))


def run_seed(seed_data: SeedData, base: ESAMConfig) -> tuple[dict, dict, ESAM]:
    """Per variant: held-out retrieval metrics and the catalog embeddings; and the full ESAM model."""
    results, embeddings = {}, {}
    model = None
    for name in VARIANTS:
        started = time.perf_counter()
        model = seed_data.train(variant_config(base, name))
        results[name], embeddings[name] = seed_data.evaluate(model)
        logger.info(
            "seed %d %-14s long-tail recall@50 %.4f, hot recall@50 %.4f (%.0fs)",
            seed_data.seed, name, results[name]["long_tail"]["recall@50"], results[name]["hot"]["recall@50"],
            time.perf_counter() - started,
        )  # fmt: skip
    embeddings["displayed"] = seed_data.data.displayed
    assert model is not None
    return results, embeddings, model


def summarise(per_seed: list[dict]) -> dict[str, dict[str, dict[str, dict[str, float | None]]]]:
    """variant -> group -> metric -> {"mean", "std"} over seeds (``summary.mean_std``)."""
    return {
        name: {
            group: {metric: mean_std([run[name][group][metric] for run in per_seed]) for metric in METRICS}
            for group in GROUPS
        }
        for name in VARIANTS
    }


def relative_changes(variants: dict) -> dict[str, dict[str, float]]:
    """variant -> relative change of mean recall@50 (hot, long tail) over the baseline."""
    base = variants["baseline"]
    return {
        name: {
            f"{group}_recall@50": values[group]["recall@50"]["mean"] / base[group]["recall@50"]["mean"] - 1.0
            for group in ("hot", "long_tail")
        }
        for name, values in variants.items()
    }


def run_experiment(config: ExperimentConfig, plot: Path | None = None) -> dict[str, Any]:
    with using_torch_threads(config.threads):
        return _run(config, plot)


def _run(config: ExperimentConfig, plot: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    view = retrieval_view_of(config)
    first = SeedData(view, config, 0)
    sweep = run_sweep(first, ESAMConfig(**config.model)) if config.sweep else None
    base = ESAMConfig(**{**config.model, **(sweep["chosen"] if sweep else {})})
    per_seed, pictures, diagnostics = [], None, {}
    for seed in range(config.seeds):
        seed_data = first if seed == 0 else SeedData(view, config, seed)
        results, embeddings, esam = run_seed(seed_data, base)
        per_seed.append(results)
        if seed == 0:
            pictures = embeddings
            torch.manual_seed(0)
            untrained = ESAM(seed_data.data.spec, base)
            uniform_view = RetrievalView(view.world, replace(view.config, popularity_power=0.0))
            uniform = SeedData(uniform_view, config, 0, targets=False)  # every item is displayed there
            diagnostics = {
                "untrained": seed_data.evaluate(untrained)[0],
                "uniform_exposure_baseline": uniform.evaluate(uniform.train(variant_config(base, "baseline")))[0],
                "domain_gap": {
                    name: domain_gap(embeddings[name], embeddings["displayed"]) for name in ("baseline", "ESAM")
                },
                "loss_gradients_item_tower": {
                    "ESAM": loss_gradients(esam, seed_data.data.tensors, config.training.batch_size),
                    "untrained": loss_gradients(untrained, seed_data.data.tensors, config.training.batch_size),
                },
            }
    assert pictures is not None
    variants = summarise(per_seed)
    report = {
        "world": view.config.world,
        "std_kind": STD_KIND,
        "variants": variants,
        "relative_to_baseline": relative_changes(variants),
        "per_seed": per_seed,
        "sweep": sweep,
        "weights": {w: getattr(base, w) for w in WEIGHTS},
        "diagnostics": diagnostics,
        "split": (
            f"hot: the {view.config.hot_fraction:.0%} most popular catalog items ({int(view.hot.sum())}); "
            f"long_tail: the other {int((~view.hot).sum())}; relevant: each query's "
            f"{view.config.n_relevant} truly most relevant items; ranking over the whole catalog"
        ),
        "displayed_items": {
            "hot": int((pictures["displayed"] & view.hot).sum()),
            "long_tail": int((pictures["displayed"] & ~view.hot).sum()),
        },
        "config": {**asdict(config), "model": asdict(base), "retrieval": asdict(view.config)},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if plot is not None:
        from training.experiments.esam_plot import plot_projection

        plot_projection(pictures, plot)
        report["plot"] = str(plot)
    return report


def format_table(report: dict[str, Any]) -> str:
    """One line per variant: mean ± std of each metric for each group (the mean alone for one seed)."""
    header = f"{'variant':<14} {'group':<10} " + " ".join(f"{m:>17}" for m in METRICS)
    lines = [header, "-" * len(header)]
    for name, groups in report["variants"].items():
        for group in GROUPS:
            cells = " ".join(f"{plus_minus(groups[group][m], 4):>17}" for m in METRICS)
            lines.append(f"{name:<14} {group:<10} {cells}")
    return "\n".join(lines)
