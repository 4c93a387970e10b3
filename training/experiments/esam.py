"""The ESAM ablation (Chen et al. 2020): does learning from non-displayed items lift the long tail?

For each seed, the world's retrieval view draws training queries and what the previous system
displayed for them, and four two-tower models train on the same data:

    baseline         L_s
    +L_DA            L_s + lambda_1 L_DA
    +L_DA+L_DC^c     L_s + lambda_1 L_DA + lambda_2 L_DC^c
    ESAM             L_s + lambda_1 L_DA + lambda_2 L_DC^c + lambda_3 L_DC^p

Each then ranks the whole catalog for held-out queries, scored by ``training.retrieval_metrics``
against the true relevant sets, for all, hot and long-tail items. The seed varies the queries, the
exposure, the non-displayed samples and the initialisation; the world (users, ads) stays fixed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.fit import TrainingConfig, fit
from training.models.esam import ESAM, ESAMConfig
from training.retrieval_data import build_retrieval_data, encode_queries
from training.retrieval_metrics import retrieval_metrics
from training.world import World, WorldConfig
from training.world.retrieval import RetrievalConfig, RetrievalView

logger = logging.getLogger(__name__)

VARIANTS = {  # name -> the loss weights it keeps (the others are 0)
    "baseline": (),
    "+L_DA": ("lambda_da",),
    "+L_DA+L_DC^c": ("lambda_da", "lambda_dc_c"),
    "ESAM": ("lambda_da", "lambda_dc_c", "lambda_dc_p"),
}
METRICS = ("recall@10", "recall@50", "ndcg@10", "ndcg@50")
GROUPS = ("all", "hot", "long_tail")


@dataclass
class ExperimentConfig:
    seeds: int = 3  # repetitions, seeds 0..seeds-1
    train_queries: int = 16_000  # training queries per seed (n_slots displayed items each)
    eval_queries: int = 2_000  # held-out queries ranking the whole catalog
    n_targets: int = 10  # non-displayed items sampled per training query
    world: dict[str, Any] = field(default_factory=dict)  # WorldConfig overrides
    retrieval: dict[str, Any] = field(default_factory=dict)  # RetrievalConfig overrides
    model: dict[str, Any] = field(default_factory=dict)  # ESAMConfig overrides (the full model's)
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(epochs=3, batch_size=256, learning_rate=3e-3, validation_fraction=0.0)
    )

    @classmethod
    def quick(cls) -> ExperimentConfig:
        """A small world and few queries: seconds, for tests; the numbers mean little."""
        return cls(
            seeds=1,
            train_queries=600,
            eval_queries=100,
            world={"n_users": 500, "n_ads": 400, "n_advertisers": 60},
            retrieval={"n_candidates": 20, "n_slots": 5, "n_relevant": 20},
            model={"hidden": [16], "embedding_dim": 8, "feature_dim": 4},
            training=TrainingConfig(epochs=1, batch_size=64, validation_fraction=0.0),
        )


def variant_config(base: ESAMConfig, name: str) -> ESAMConfig:
    kept = VARIANTS[name]
    return replace(
        base, **{w: getattr(base, w) if w in kept else 0.0 for w in ("lambda_da", "lambda_dc_c", "lambda_dc_p")}
    )


@torch.no_grad()
def _embed(model: ESAM, categorical: np.ndarray, numeric: np.ndarray, tower: str) -> np.ndarray:
    model.eval()
    return getattr(model, tower)(torch.from_numpy(categorical), torch.from_numpy(numeric)).numpy()


def run_seed(view: RetrievalView, config: ExperimentConfig, seed: int) -> tuple[dict, dict]:
    """Per variant: retrieval metrics; and per variant the catalog embeddings (for the picture)."""
    queries = view.queries(config.train_queries, seed)
    data = build_retrieval_data(view, queries, view.expose(queries, seed), config.n_targets, seed)
    held_out = view.queries(config.eval_queries, 1_000_000 + seed)
    relevant = view.relevant_items(held_out)
    encoded = encode_queries(data.spec, view, held_out)
    groups = {"all": np.ones(view.n_items, dtype=bool), "hot": view.hot, "long_tail": ~view.hot}
    base = ESAMConfig(**config.model)
    results, embeddings = {}, {}
    for name in VARIANTS:
        started = time.perf_counter()
        torch.manual_seed(seed)
        model = ESAM(data.spec, variant_config(base, name))
        fit(model, data.tensors, replace(config.training, seed=seed), progress=False)
        items = _embed(model, data.catalog.categorical, data.catalog.numeric, "item_tower")  # (A, L)
        q = _embed(model, encoded.categorical, encoded.numeric, "query_tower")  # (Q, L)
        results[name] = retrieval_metrics(q @ items.T, relevant, groups)
        embeddings[name] = items
        logger.info(
            "seed %d %-14s long-tail recall@50 %.4f, hot recall@50 %.4f (%.0fs)",
            seed, name, results[name]["long_tail"]["recall@50"], results[name]["hot"]["recall@50"],
            time.perf_counter() - started,
        )  # fmt: skip
    embeddings["displayed"] = data.displayed
    return results, embeddings


def summarise(per_seed: list[dict]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """variant -> group -> metric -> {"mean", "std"} over seeds."""
    out: dict = {}
    for name in VARIANTS:
        out[name] = {}
        for group in GROUPS:
            out[name][group] = {}
            for metric in METRICS:
                values = np.array([run[name][group][metric] for run in per_seed])
                out[name][group][metric] = {"mean": float(values.mean()), "std": float(values.std())}
    return out


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
    started = time.perf_counter()
    view = RetrievalView(World(WorldConfig(**config.world)), RetrievalConfig(**config.retrieval))
    per_seed, pictures = [], None
    for seed in range(config.seeds):
        results, embeddings = run_seed(view, config, seed)
        per_seed.append(results)
        pictures = pictures or embeddings
    variants = summarise(per_seed)
    report = {
        "variants": variants,
        "relative_to_baseline": relative_changes(variants),
        "per_seed": per_seed,
        "split": (
            f"hot: the {view.config.hot_fraction:.0%} most popular catalog items ({int(view.hot.sum())}); "
            f"long_tail: the other {int((~view.hot).sum())}; relevant: each query's "
            f"{view.config.n_relevant} truly most relevant items; ranking over the whole catalog"
        ),
        "displayed_items": {
            "hot": int((pictures["displayed"] & view.hot).sum()),
            "long_tail": int((pictures["displayed"] & ~view.hot).sum()),
        },
        "config": {
            **asdict(config),
            "model": asdict(ESAMConfig(**config.model)),
            "retrieval": asdict(view.config),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    if plot is not None:
        from training.experiments.esam_plot import plot_projection

        plot_projection(pictures, plot)
        report["plot"] = str(plot)
    return report


def format_table(report: dict[str, Any]) -> str:
    """One line per variant: mean ± std of each metric for each group."""
    header = f"{'variant':<14} {'group':<10} " + " ".join(f"{m:>17}" for m in METRICS)
    lines = [header, "-" * len(header)]
    for name, groups in report["variants"].items():
        for group in GROUPS:
            cells = " ".join(f"{v['mean']:>9.4f} ± {v['std']:.4f}" for v in (groups[group][m] for m in METRICS))
            lines.append(f"{name:<14} {group:<10} {cells}")
    return "\n".join(lines)
