"""Why a retrained ESAM retriever inverts (ranks the ads outside its training window first): offline ablations on
one seed-day of a ``ctr auction --retrieval esam --retrain-retrieval`` run's work dir.

The retriever serving day D of a pipeline was trained, from a fresh start, on the pipeline's logs of the
``train_days`` days before D (clients/auction/retrieval_daily.py). Here that window is retrained, through the same
``train_esam`` (and the committed ESAM config with ``ESAM_TRAINING``), and scored on day D's pools (``draw_day``, the
seed's) in torch; then again with one thing changed at a time. Each variant is measured as the auction measures the
retriever: the share of the pools' true top K by expected value (and by true CTR) its top K hold
(``retrieval_figures``), and the share of its top K that are ads of the window against the pools' share
(``files_ads``, as ``reports/auction_retrieval_daily.py``'s ``seen_shares``); beside them the mean ad_quality of
what it retrieves and of the pools, and the share of each with a numeric value clipped to the training range.

- ``as_run``: the window as the auction trained on it; its weights are checked against the checkpoint the run left
  (the last retraining's: run the auction with ``--days D + 1``) and its figures against the report's day D.
- ``init_seed_N``: ``[training] seed = N`` (the initial weights and the batch order) instead of 0;
  ``untrained_init_seed_N``: its initial weights.
- ``no_target_terms``: ``lambda_da = lambda_dc_p = 0``, the two terms on the non-displayed candidates off (the
  non-displayed rows then enter only the encoder's statistics and the catalog); ``click_loss_only``: also
  ``lambda_dc_c = 0``, the pointwise click loss alone.
- ``unseen_ad_ids_at_seen_mean``, ``unseen_ids_at_seen_mean``: ``as_run`` scored with the id embedding rows (ad_id;
  ad_id and advertiser_id) no window ad hashes to, which training left at their initial values, replaced by the
  mean of the rows the window's ads hash to; ``seen_ad_ids_at_init``: the window's ad_id rows put back to their
  initial values instead (what the id embeddings learned, taken out).
- ``history_statistics``: the numeric features standardised and clipped by the history-trained version's statistics,
  not fitted on the window (``statistics_of``); ``without_quality``: the optional ad_quality left out of the
  window's logs and of the scored ads (every ad at its default). Both from ``--remedy-init-seeds`` too.
- ``warm_start``: each retraining since the history-trained version 1 started from the previous version's weights
  (a chain over the same logged windows: the logs are the run's, retrieved by its fresh-start versions).
- ``history_kept``: the history window's days kept in the window beside the pipeline's own (and from
  ``--remedy-init-seeds``).
- ``untrained``: the initial weights, scored on the window's encoder statistics.

With ``--rows-or-ads`` (``rows_or_ads``) only the history kept's two differences from the window as run, each alone,
from start 0 and ``--remedy-init-seeds``: ``doubled`` (each request twice: the rows, not the ads) and
``history_kept_halved`` (every other request of the history-kept window: the history's ads, not the rows).

Diagnostics of ``as_run``: the mean similarity v_q . v_d of the pool's window ads and other ads, under the trained
and the initial weights; how far the id embedding rows moved from their initial values; the window's click rate.
Of the case (``windows``, alone with ``--windows-only``): the ad_quality and clicks of the displayed rows of the
window and of the history window (``window_labels``): how wide the window's quality is, and whether its clicks rise
with it.

    PYTHONPATH=. python reports/retriever_inversion.py --work-dir WORK_DIR --report RUN.json --seed S --day D \\
        [--pipeline oracle] [--configs models] [--init-seeds 1 2 3] [--remedy-init-seeds 1 2 3] [--windows-only] \\
        [--rows-or-ads] \\
        [--out reports/retriever_inversion_seedS_dayD.json]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from cli.reports import write_report
from clients.auction.config_overrides import with_overrides
from clients.auction.merge import read_part
from clients.auction.retrieval import (
    ESAM_MODEL,
    esam_config_text,
    history_logs,
    retrieval_figures,
    top_columns,
    train_esam,
)
from clients.auction.retrieval_daily import LATEST, day_logs, window_days
from clients.auction.run import AuctionConfig
from clients.auction.traffic import DayRequests, draw_day, score_bodies
from common.encoder import FeatureEncoder
from common.features import FeatureSpec
from reports.auction_retrieval_daily import files_ads
from training.fitting.checkpoint import Checkpoint
from training.fitting.fit import fit
from training.logs import retrieval_logs
from training.logs.retrieval_logs import build_log_data
from training.model_config import ModelConfig
from training.models.esam import ESAM
from training.models.registry import build_model
from training.training_files import checkpoint_path
from training.world import World, feature_spec

ID_FEATURES = ("ad_id", "advertiser_id")
INIT_SEEDS = (1, 2, 3)
WITHOUT_QUALITY = ("ad_quality",)  # an optional feature: left out, every ad takes its default


class Case:
    """One seed-day of a retrained run: its world, pools, the serving version's window and what it held."""

    def __init__(self, work_dir: Path, report: dict[str, Any], pipeline: str, seed: int, day: int) -> None:
        config = report["config"]
        self.settings = AuctionConfig(
            **{k: config[k] for k in ("days", "requests_per_day", "slots", "candidates", "train_days")}
        )
        if not config.get("retrain_retrieval"):
            raise SystemExit("--report is no --retrain-retrieval run")
        runs = {run["seed"]: run for run in report["pipelines"][pipeline]["seeds"]}
        if seed not in runs or not 1 <= day < len(runs[seed]["days"]):
            raise SystemExit(f"the run has no seed {seed} day {day} from day 1 on")
        self.work_dir, self.pipeline, self.seed, self.day = work_dir, pipeline, seed, day
        self.reported = {
            k: runs[seed]["days"][day][k] for k in ("retrieval_top_value_share", "retrieval_top_ctr_share")
        }
        self.world = self.settings.world(seed)
        advertisers = self.settings.advertisers(self.world, seed)
        self.pool = draw_day(self.world, seed, day, self.settings.requests_per_day, self.settings.train_days,
                             config["pool"])  # fmt: skip
        users, hours = self.pool.user[:, None], self.pool.hour[:, None]
        self.true_ctr = self.world.true_ctr(users, self.pool.ads, hours)
        self.value = (
            advertisers.value_per_click(self.pool.ads, self.world.true_cvr(users, self.pool.ads)) * self.true_ctr
        )
        self.seen = np.isin(self.pool.ads, self.window_ad_indices(day))

    def window(self, day: int, keep_history: bool = False) -> list[tuple[Path, Path]]:
        """The log files the version serving ``day`` trained on (``DailyRetrieval.window``'s), the history's days
        before them with ``keep_history``."""
        seed_dir, train_days = self.work_dir / f"seed{self.seed}", self.settings.train_days
        history = history_logs(seed_dir / "history", seed_dir / "retrieval", train_days)
        logs = seed_dir / self.pipeline / "logs"
        if keep_history:  # every own day before ``day``, beside the history's
            return [*history, *(day_logs(logs, d) for d in range(day))]
        return window_days(history, logs, day - 1, train_days, LATEST)

    def window_ad_indices(self, day: int) -> np.ndarray:
        return files_ads(self.window(day))

    def figures(self, scores: np.ndarray) -> dict[str, float]:
        """The retriever's top K of each pool by ``scores`` (R, P), measured as the auction measures it."""
        columns = top_columns(scores, self.settings.candidates)
        taken = np.take_along_axis(self.seen, columns, axis=1)
        quality = self.world.population.ad_quality[self.pool.ads]
        return retrieval_figures(self.value, self.true_ctr, columns) | {
            "retrieved_seen_share": float(taken.mean()),
            "pool_seen_share": float(self.seen.mean()),
            "retrieved_mean_quality": float(np.take_along_axis(quality, columns, axis=1).mean()),
            "pool_mean_quality": float(quality.mean()),
        }


# a log file's table with its requests changed (the rows of a request kept together, in the order logged)
Requests = Callable[[pa.Table], pa.Table]


def copied_window(
    window: list[tuple[Path, Path]], folder: Path, drop: tuple[str, ...] = (), requests: Requests | None = None
) -> tuple[Path, Path]:
    """The window's displayed and non-displayed files in one folder of each, as ``DailyRetrieval`` trains on them,
    without the columns ``drop``, and with each file's requests as ``requests`` makes them (``doubled``,
    ``halved``; None: as logged)."""
    for kind, files in (("displayed", [d for d, _ in window]), ("non_displayed", [n for _, n in window])):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for file in files:
            table = pq.read_table(file).drop_columns(list(drop))
            table = table if requests is None else requests(table)
            pq.write_table(table, folder / kind / f"{file.parent.name}_{file.name}")
    return folder / "displayed", folder / "non_displayed"


def request_ranks(table: pa.Table) -> np.ndarray:
    """Each row's request, numbered in the order the file first shows them."""
    ids = table.column("request_id").to_numpy(zero_copy_only=False).astype(str)
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


def doubled(table: pa.Table) -> pa.Table:
    """Each request twice, its copy (request_id + "/copy") right after it: twice the rows and the steps, the same
    ads and clicks, and the latest tenth of the requests (the validation tail) the same requests as logged."""
    copy = table.set_column(
        table.column_names.index("request_id"),
        "request_id",
        pc.binary_join_element_wise(table.column("request_id"), pa.scalar("/copy"), ""),
    )
    both = pa.concat_tables([table, copy])
    rank, is_copy = np.tile(request_ranks(table), 2), np.repeat([0, 1], table.num_rows)
    return both.take(np.lexsort((np.arange(both.num_rows), is_copy, rank)))


def halved(table: pa.Table) -> pa.Table:
    """Every other request (the first, third, ... the file shows), whole: half the rows, the same days."""
    return table.filter(request_ranks(table) % 2 == 0)


def trained_fresh(
    world: World,
    window: list[tuple[Path, Path]],
    source: Path,
    folder: Path,
    drop: tuple[str, ...] = (),
    requests: Requests | None = None,
) -> Checkpoint:
    """ESAM trained on ``window`` (without the optional features ``drop``, its requests as ``requests`` makes them)
    as the auction trains it (``train_esam``, from the configs in ``source``)."""
    displayed, other = copied_window(window, folder / "window", drop, requests)
    train_esam(world, displayed, other, source, folder)
    return Checkpoint.load(checkpoint_path(folder / "work", ESAM_MODEL))


def trained_warm(
    world: World, window: list[tuple[Path, Path]], source: Path, folder: Path, start: ESAM
) -> tuple[ESAM, FeatureSpec]:
    """ESAM trained on ``window`` as ``trained_fresh`` trains it, but from ``start``'s weights."""
    (folder / ESAM_MODEL).mkdir(parents=True, exist_ok=True)
    (folder / ESAM_MODEL / "config.toml").write_text(esam_config_text(source), encoding="utf-8")
    config = ModelConfig.load(folder, ESAM_MODEL)
    displayed, other = copied_window(window, folder / "window")
    spec = feature_spec(world.config)
    data = build_log_data(displayed, other, spec, config.queries.n_targets, config.queries.seed)
    model = build_model(config.kind, data.spec, config.model, seed=config.training.seed)
    model.load_state_dict(start.state_dict())
    fit(model, data.tensors, config.training, progress=False)
    return model.eval(), data.spec


@contextmanager
def statistics_of(spec: FeatureSpec) -> Iterator[None]:
    """Within the block, ESAM's training takes ``spec``'s numeric statistics (mean, deviation, range: what values
    are standardised and clipped by) instead of fitting them on its window's rows."""
    with mock.patch.object(retrieval_logs, "fit_statistics", lambda fitted, *_: fitted.with_stats(spec.stats)):
        yield


def configs_with(source: Path, folder: Path, table: str, overrides: dict[str, Any]) -> Path:
    """A copy of the configs in ``source`` whose ESAM config has ``overrides`` in ``[table]``."""
    (folder / ESAM_MODEL).mkdir(parents=True, exist_ok=True)
    text = (source / ESAM_MODEL / "config.toml").read_text(encoding="utf-8")
    (folder / ESAM_MODEL / "config.toml").write_text(with_overrides(text, table, overrides), encoding="utf-8")
    return folder


class PoolEncoding:
    """A day's pools encoded for the towers under one spec: queries (R, ...) and items (R * P, ...)."""

    def __init__(self, world: World, pool: DayRequests, spec: FeatureSpec, drop: tuple[str, ...] = ()) -> None:
        bodies = score_bodies(world, pool)
        query_spec, item_spec = spec.for_side("context"), spec.for_side("candidate")
        contexts = {f.name: [b["context"][f.name] for b in bodies] for f in query_spec.features}
        sent = [f for f in item_spec.features if f.name not in drop]  # an optional feature left out: its default
        items = {f.name: [c[f.name] for b in bodies for c in b["candidates"]] for f in sent}
        self.query = FeatureEncoder(query_spec).encode(contexts, len(bodies))
        self.items = FeatureEncoder(item_spec).encode(items, len(items["ad_id"]))
        self.shape = pool.ads.shape
        offsets = np.cumsum([0] + [f.buckets for f in item_spec.categorical])
        names = [f.name for f in item_spec.categorical]
        self.id_rows = {
            name: (int(offsets[names.index(name)]), int(offsets[names.index(name) + 1])) for name in ID_FEATURES
        }
        self.id_columns = {name: names.index(name) for name in ID_FEATURES}

    @torch.no_grad()
    def embeddings(self, model: ESAM) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        v_q = model.query_tower(torch.from_numpy(self.query.categorical), torch.from_numpy(self.query.numeric))
        v_d = model.item_tower(torch.from_numpy(self.items.categorical), torch.from_numpy(self.items.numeric))
        return v_q.numpy(), v_d.numpy().reshape(*self.shape, -1)

    def scores(self, model: ESAM) -> np.ndarray:
        """(R, P) v_q . v_d: S's ranking (its scale and bias do not change it)."""
        v_q, v_d = self.embeddings(model)
        return np.einsum("rl,rpl->rp", v_q, v_d)

    def clipped_rows(self) -> np.ndarray:
        """(R, P) bool: the pool's ads with a numeric value clipped to the training range."""
        clipped = self.items.clipped if self.items.clipped is not None else np.zeros_like(self.items.numeric, bool)
        return clipped.any(axis=1).reshape(self.shape)


def window_id_rows(case: Case, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Per id feature, the item embedding rows (offsets applied) that the window's ads hash to."""
    ads = case.window_ad_indices(case.day)
    alone = replace(case.pool, user=case.pool.user[:1], hour=case.pool.hour[:1], ads=ads[None, :])
    encoding = PoolEncoding(case.world, alone, spec)
    return {name: np.unique(encoding.items.categorical[:, encoding.id_columns[name]]) for name in ID_FEATURES}


def with_rows(model: ESAM, rows: np.ndarray, values: torch.Tensor) -> ESAM:
    """A copy of ``model`` whose item embedding ``rows`` hold ``values`` ((D,) or (len(rows), D))."""
    changed = copy.deepcopy(model)
    changed.item_tower.embedding.table.weight.data[torch.from_numpy(rows)] = values
    return changed.eval()


def unseen_ids_at_seen_mean(model: ESAM, seen: dict[str, np.ndarray], ranges: dict[str, tuple[int, int]]) -> ESAM:
    """``model`` with each id feature's rows no window ad hashes to set to the mean of those they hash to."""
    for name, rows in seen.items():
        unseen = np.setdiff1d(np.arange(*ranges[name]), rows)
        model = with_rows(model, unseen, model.item_tower.embedding.table.weight.data[rows].mean(0))
    return model


def initial_model(checkpoint: Checkpoint) -> ESAM:
    """The weights the checkpoint's training started from (``build_model`` with its [training] seed)."""
    return build_model(
        checkpoint.kind, checkpoint.spec, checkpoint.model_params, seed=checkpoint.training["seed"]
    ).eval()


def window_labels(files: list[Path]) -> dict[str, float]:
    """The displayed rows of ``files``: their ad_quality's mean and spread, their click rate, the click rate of the
    rows below and above the median quality, and the correlation of click and quality."""
    tables = [pq.read_table(f, columns=["ad_quality", "click"]) for f in files]
    quality = np.concatenate([t.column("ad_quality").to_numpy() for t in tables]).astype(np.float64)
    click = np.concatenate([t.column("click").to_numpy() for t in tables]).astype(np.float64)
    low = quality < np.median(quality)
    return {
        "rows": int(quality.size),
        "quality_mean": float(quality.mean()),
        "quality_std": float(quality.std()),
        "click_rate": float(click.mean()),
        "click_rate_lower_quality_half": float(click[low].mean()),
        "click_rate_upper_quality_half": float(click[~low].mean()),
        "quality_click_correlation": float(np.corrcoef(quality, click)[0, 1]),
    }


def windows(case: Case) -> dict[str, dict[str, float]]:
    """``window_labels`` of the window the day's version trained on, and of the history window."""
    history = case.window(case.day, keep_history=True)[: case.settings.train_days]
    return {
        "window": window_labels([d for d, _ in case.window(case.day)]),
        "history": window_labels([d for d, _ in history]),
    }


def diagnostics(case: Case, encoding: PoolEncoding, model: ESAM, start: ESAM, seen: dict[str, np.ndarray]) -> dict:
    """What differs between the window's ads and the others, under ``model`` and its initial weights ``start``."""
    out: dict[str, Any] = {}
    for side, weights in (("trained", model), ("initial", start)):
        scores = encoding.scores(weights)
        out[f"{side}_mean_similarity_window_ads"] = float(scores[case.seen].mean())
        out[f"{side}_mean_similarity_other_ads"] = float(scores[~case.seen].mean())
    moved = (model.item_tower.embedding.table.weight - start.item_tower.embedding.table.weight).norm(dim=1).detach()
    norms = model.item_tower.embedding.table.weight.norm(dim=1).detach()
    for name, rows in seen.items():
        unseen = np.setdiff1d(np.arange(*encoding.id_rows[name]), rows)
        for which, r in (("window", rows), ("other", unseen)):
            out[f"{name}_rows_{which}_moved"] = float(moved[torch.from_numpy(r)].mean())
            out[f"{name}_rows_{which}_norm"] = float(norms[torch.from_numpy(r)].mean())
    displayed = [pq.read_table(d, columns=["click"]).column("click").to_numpy() for d, _ in case.window(case.day)]
    out["window_click_rate"] = float(np.concatenate(displayed).mean())
    return out


def ablations(
    case: Case,
    source: Path,
    scratch: Path,
    init_seeds: tuple[int, ...] = INIT_SEEDS,
    remedy_init_seeds: tuple[int, ...] = INIT_SEEDS,
) -> dict[str, Any]:
    """Every variant's figures on the case's pools, and the diagnostics of the model as run; the window as run is
    retrained from the starts ``init_seeds`` too (each start's untrained weights measured beside it), and the
    history statistics, the window without ad_quality and the history kept from ``remedy_init_seeds``."""
    results: dict[str, Any] = {}

    def measured(name: str, model: ESAM, spec: FeatureSpec, drop: tuple[str, ...] = ()) -> None:
        encoding = PoolEncoding(case.world, case.pool, spec, drop)
        scores = encoding.scores(model)
        columns = top_columns(scores, case.settings.candidates)
        clipped = encoding.clipped_rows()
        results[name] = case.figures(scores) | {
            "retrieved_clipped_share": float(np.take_along_axis(clipped, columns, axis=1).mean()),
            "pool_clipped_share": float(clipped.mean()),
        }
        sys.stdout.write(f"{name} { ({k: round(v, 4) for k, v in results[name].items()}) }\n")

    as_run = trained_fresh(case.world, case.window(case.day), source, scratch / "as_run")
    model, spec = as_run.build(), as_run.spec
    measured("as_run", model, spec)
    left = checkpoint_path(case.work_dir / f"seed{case.seed}" / case.pipeline / "retrieval" / "work", ESAM_MODEL)
    if left.is_file():
        kept = Checkpoint.load(left).state_dict
        results["as_run"]["same_weights_as_the_run"] = all(torch.equal(kept[k], as_run.state_dict[k]) for k in kept)
    results["as_run"]["reported"] = case.reported
    encoding, start = PoolEncoding(case.world, case.pool, spec), initial_model(as_run)
    seen = window_id_rows(case, spec)
    results["as_run"]["diagnostics"] = diagnostics(case, encoding, model, start, seen)
    measured("untrained", start, spec)
    measured(
        "unseen_ad_ids_at_seen_mean", unseen_ids_at_seen_mean(model, {"ad_id": seen["ad_id"]}, encoding.id_rows), spec
    )
    measured("unseen_ids_at_seen_mean", unseen_ids_at_seen_mean(model, seen, encoding.id_rows), spec)
    initial = start.item_tower.embedding.table.weight.data[torch.from_numpy(seen["ad_id"])]
    measured("seen_ad_ids_at_init", with_rows(model, seen["ad_id"], initial), spec)

    variants: dict[str, tuple[str, dict[str, Any]]] = {
        **{f"init_seed_{s}": ("training", {"seed": s}) for s in init_seeds},
        "no_target_terms": ("model", {"lambda_da": 0.0, "lambda_dc_p": 0.0}),
        "click_loss_only": ("model", {"lambda_da": 0.0, "lambda_dc_p": 0.0, "lambda_dc_c": 0.0}),
    }
    for name, (table, overrides) in variants.items():
        configs = configs_with(source, scratch / name / "configs", table, overrides)
        checkpoint = trained_fresh(case.world, case.window(case.day), configs, scratch / name)
        measured(name, checkpoint.build(), checkpoint.spec)
        if name.startswith("init_seed_"):
            measured(f"untrained_{name}", initial_model(checkpoint), checkpoint.spec)

    first = Checkpoint.load(checkpoint_path(case.work_dir / f"seed{case.seed}" / "retrieval" / "work", ESAM_MODEL))
    for seed in (0, *remedy_init_seeds):
        name = "history_statistics" + (f"_init_seed_{seed}" if seed else "")
        configs = configs_with(source, scratch / name / "configs", "training", {"seed": seed})
        with statistics_of(first.spec):
            checkpoint = trained_fresh(case.world, case.window(case.day), configs, scratch / name)
        measured(name, checkpoint.build(), checkpoint.spec)

    for seed in (0, *remedy_init_seeds):
        name = "without_quality" + (f"_init_seed_{seed}" if seed else "")
        configs = configs_with(source, scratch / name / "configs", "training", {"seed": seed})
        checkpoint = trained_fresh(case.world, case.window(case.day), configs, scratch / name, WITHOUT_QUALITY)
        measured(name, checkpoint.build(), checkpoint.spec, WITHOUT_QUALITY)

    for seed in (0, *remedy_init_seeds):
        name = "history_kept" + (f"_init_seed_{seed}" if seed else "")
        configs = configs_with(source, scratch / name / "configs", "training", {"seed": seed})
        checkpoint = trained_fresh(case.world, case.window(case.day, keep_history=True), configs, scratch / name)
        measured(name, checkpoint.build(), checkpoint.spec)

    warm: ESAM = first.build()
    for day in range(1, case.day + 1):  # the chain of retrainings, each from the one before
        warm, warm_spec = trained_warm(case.world, case.window(day), source, scratch / f"warm_day{day}", warm)
    measured("warm_start", warm, warm_spec)
    return results


def rows_or_ads(case: Case, source: Path, scratch: Path, seeds: tuple[int, ...]) -> dict[str, Any]:
    """The history kept's two differences from the window as run taken apart, each from the starts ``seeds``:
    ``doubled``, the window as run with each request twice (twice the rows and steps, no other ad);
    ``history_kept_halved``, the history kept with every other request of each day (the history's ads, the rows of
    the window as run, about); ``history_kept``, both. ``as_run`` beside them."""
    results: dict[str, Any] = {}
    variants = {
        "as_run": (case.window(case.day), None),
        "doubled": (case.window(case.day), doubled),
        "history_kept_halved": (case.window(case.day, keep_history=True), halved),
        "history_kept": (case.window(case.day, keep_history=True), None),
    }
    for seed in seeds:
        configs = configs_with(source, scratch / f"configs_{seed}", "training", {"seed": seed})
        for variant, (window, requests) in variants.items():
            name = variant + (f"_init_seed_{seed}" if seed else "")
            checkpoint = trained_fresh(case.world, window, configs, scratch / name, requests=requests)
            encoding = PoolEncoding(case.world, case.pool, checkpoint.spec)
            results[name] = case.figures(encoding.scores(checkpoint.build())) | {
                "training_queries": checkpoint.training["queries"]
            }
            sys.stdout.write(f"{name} { ({k: round(v, 4) for k, v in results[name].items()}) }\n")
    results["reported"] = case.reported
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="the --retrain-retrieval run's --work-dir")
    parser.add_argument("--report", type=Path, required=True, help="that run's report (--out)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--day", type=int, required=True, help="the day whose serving version is retrained")
    parser.add_argument("--pipeline", default="oracle")
    parser.add_argument("--configs", type=Path, default=Path("models"), help="the run's --configs")
    parser.add_argument("--init-seeds", type=int, nargs="*", default=list(INIT_SEEDS), help="the window's other starts")
    parser.add_argument(
        "--remedy-init-seeds", type=int, nargs="*", default=list(INIT_SEEDS), help="other starts of the remedies"
    )
    parser.add_argument("--windows-only", action="store_true", help="the windows' labels (``windows``) alone")
    parser.add_argument(
        "--rows-or-ads",
        action="store_true",
        help="only the history kept's two parts apart (``rows_or_ads``), from start 0 and --remedy-init-seeds",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    case = Case(args.work_dir, read_part(args.report), args.pipeline, args.seed, args.day)
    report: dict[str, Any] = {"seed": args.seed, "day": args.day, "pipeline": args.pipeline, "windows": windows(case)}
    if args.rows_or_ads:
        with tempfile.TemporaryDirectory() as scratch:
            seeds = (0, *args.remedy_init_seeds)
            report["rows_or_ads"] = rows_or_ads(case, args.configs, Path(scratch), seeds)
    elif not args.windows_only:
        with tempfile.TemporaryDirectory() as scratch:
            report["variants"] = ablations(
                case, args.configs, Path(scratch), tuple(args.init_seeds), tuple(args.remedy_init_seeds)
            )
    report["command"] = " ".join(["python reports/retriever_inversion.py", *sys.argv[1:]])
    out = args.out or Path(f"reports/retriever_inversion_seed{args.seed}_day{args.day}.json")
    write_report(out, report)


if __name__ == "__main__":
    main()
