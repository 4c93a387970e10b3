"""Where a request's K candidates come from: the world's eligible pool (``pool``, the default), or the top K of a
larger popularity-drawn pool of P ads by a retriever: ``esam``, the similarity a served ESAM model answers over
``/v1/similarity`` (``items`` mode: the item tower embeds any ad from its attributes), or ``first``, the first K of
the same P-pool (the popularity draw without a model: distributed as the ``pool`` candidates are, the control).

Retrieval is upstream of the pipelines and shared by them: a seed's days are drawn and retrieved once
(``retrieved_days``), before any pipeline runs, so every pipeline of a seed sees the same K candidates and the
paired comparisons stay paired. The click and conversion draws are per (request, pool column), gathered to the
retrieved columns: an ad has the same outcome whichever retriever hands it over.

The ESAM model of a seed (``train_esam``) trains on the history window the service pipelines' first models train
on: its displayed impressions and the candidates of those requests that were not displayed, through the path
``ctr train esam --logs DISPLAYED --non-displayed OTHER --spec SPEC.toml`` takes, in this process; it is exported
into a repository of its own and served by a ``ctr serve`` of its own (``serving_retrieval``), stopped once the
seed's days are retrieved (even on error). It is not retrained on the auction's days, unless ``--retrain-retrieval``
(clients/auction/retrieval_daily.py): then only day 0 is retrieved here, for every pipeline, and each pipeline
retrains its own copy of the model on its own days. With ``--url`` the running service's own retrieval model
retrieves (none is trained here; ``run.served_retriever`` checks it is served before day 0).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np

from clients.auction.config_overrides import with_overrides
from clients.auction.traffic import DayRequests, draw_day, score_bodies
from clients.client import AsyncScoringClient, ServiceError
from clients.service_process import REQUEST_TIMEOUT_MS, RunningService, served
from common.roles import NO_MODEL, role_variables
from training.world import World, feature_spec, write_logs
from training.world.logs import renumbered
from training.world.simulate import iter_simulated_days

if TYPE_CHECKING:
    from clients.auction.advertisers import Advertisers
    from clients.auction.run import AuctionConfig

logger = logging.getLogger(__name__)

POOL, FIRST, ESAM = "pool", "first", "esam"
RETRIEVALS = (POOL, FIRST, ESAM)
DEFAULT_POOL = 100  # P: ads drawn per request for a retriever to take K of
ESAM_MODEL = "esam"  # the committed config the retrieval model starts from, and its name in its repository
RETRIEVAL_ROLE = "retrieval"  # how /v1/models names the role of the model /v1/similarity answers with
ESAM_REPOSITORY = "models"  # the retrieval model's repository, under its training directory
HISTORY_NON_DISPLAYED = "non_displayed"  # the history's non-displayed candidates, under its training directory
# [training] of the retrieval model: the committed 3 epochs of 256 queries are sized for 16,000 queries; on the
# default history window (2 days x 2,000 requests, a tenth kept for validation: 112 Adam steps an epoch at 32)
# seed 0's validation click AUC was 0.60 after 1 epoch at 32 and 0.50-0.56 after 3 at 32 to 256 (docs/auction.md)
ESAM_TRAINING = {"batch_size": 32, "epochs": 1}
RETRIEVAL_FIGURES = (
    "retrieval_top_value_share",
    "retrieval_top_ctr_share",
    "retrieval_true_ctr_lift",
    "retrieval_true_value_lift",
)


def check_retrieval(retrieval: str, pool: int | None, candidates: int, retrain: bool = False) -> None:
    """ValueError for a retrieval setting that cannot run: an unknown retriever, a pool without one, a pool that
    leaves it nothing to choose, a retraining without a model to retrain."""
    if retrieval not in RETRIEVALS:
        raise ValueError(f"--retrieval must be one of {list(RETRIEVALS)}, got {retrieval!r}")
    if retrain and retrieval != ESAM:
        raise ValueError(
            f"--retrain-retrieval retrains the ESAM retriever on each pipeline's own days: give it with --retrieval "
            f"esam (got --retrieval {retrieval})"
        )
    if retrieval == POOL:
        if pool is not None:
            raise ValueError(
                "--pool is the P ads a retriever takes the K candidates of: give it with --retrieval esam or first"
            )
        return
    if pool is None or pool <= candidates:
        raise ValueError(f"--pool ({pool}) must exceed --candidates ({candidates}): the retriever picks K of P")


@dataclass(frozen=True)
class RetrievedDay:
    requests: DayRequests  # the K candidates of each request, their outcome draws with them
    figures: dict[str, Any]  # how good the retrieval was, by the truth (``retrieval_figures``); none for ``pool``


@dataclass(frozen=True)
class SharedRetrieval:
    """A seed's days retrieved once, before any pipeline runs: every pipeline of the seed is handed the same."""

    days: list[RetrievedDay]
    trained_in: Path | None = None  # an esam retrieval's training folder: its repository, history's non-displayed
    history: Path | None = None  # the folder of the history window's displayed logs it trained on

    async def day(self, day: int) -> RetrievedDay:
        return self.days[day]


class Retrieval(Protocol):
    """Where a pipeline's days take their candidates from: ``SharedRetrieval``, or a pipeline's own retriever
    (retrieval_daily.py ``DailyRetrieval``)."""

    async def day(self, day: int) -> RetrievedDay: ...


def retrieved_days(
    config: AuctionConfig, world: World, advertisers: Advertisers, seed: int, history: Path | None, directory: Path
) -> SharedRetrieval:
    """Every day of ``seed``, its candidates retrieved as ``config.retrieval`` (first or esam) says; ``history``: the
    folder of the history window's displayed logs (an ``esam`` model trains on it and on its non-displayed
    candidates, written under ``directory``). With ``retrain_retrieval``, day 0 alone: the pipelines retrieve their
    later days themselves (retrieval_daily.py)."""
    k, n, offset = config.candidates, config.requests_per_day, config.train_days
    pools = [draw_day(world, seed, day, n, offset, config.pool) for day in range(pooled_days(config))]
    if config.retrieval == FIRST:
        columns = [np.broadcast_to(np.arange(k), (n, k)) for _ in pools]
        trained_in = None
    elif config.url is not None:  # the running service's own retrieval model (``served_retriever``), not trained here
        scores = [asyncio.run(similarities(config.url, world, p, config.concurrency))[0] for p in pools]
        columns = [top_columns(s, k) for s in scores]
        trained_in = None
    else:
        if history is None:
            raise ValueError("--retrieval esam trains on the history window: none was simulated")
        non_displayed = history_non_displayed(world, offset, n, seed, directory / HISTORY_NON_DISPLAYED)
        train_esam(world, history, non_displayed, config.model_source, directory)
        with serving_retrieval(directory / ESAM_REPOSITORY, directory / "service.log") as service:
            scores = [asyncio.run(similarities(service.url, world, p, config.concurrency))[0] for p in pools]
        columns = [top_columns(s, k) for s in scores]
        trained_in = directory
    days = [
        retrieved_day(world, advertisers, seed, config.retrieval, p, c) for p, c in zip(pools, columns, strict=True)
    ]
    return SharedRetrieval(days, trained_in, history)


def pooled_days(config: AuctionConfig) -> int:
    """The days retrieved before the pipelines run: all, or day 0 where each pipeline retrains its own retriever."""
    return 1 if config.retrain_retrieval else config.days


def retrieved_day(
    world: World, advertisers: Advertisers, seed: int, retriever: str, pool: DayRequests, chosen: np.ndarray
) -> RetrievedDay:
    """The ``pool``'s requests with the candidates at ``chosen`` (R, K), and how good they are by the truth."""
    users, hours = pool.user[:, None], pool.hour[:, None]
    true_ctr = world.true_ctr(users, pool.ads, hours)
    value = advertisers.value_per_click(pool.ads, world.true_cvr(users, pool.ads)) * true_ctr
    figures = retrieval_figures(value, true_ctr, chosen)
    logger.info("seed %d day %d: retrieval %s %s", seed, pool.day, retriever, figures)
    return RetrievedDay(gathered(pool, chosen), figures)


def history_non_displayed(world: World, days: int, requests_per_day: int, seed: int, directory: Path) -> Path:
    """The candidates the history's requests did not display (the window ``run.py``'s ``_history`` writes: the
    same simulation, so the same requests, named as its days'), one file a day in ``directory``; returns
    ``directory``."""
    simulated = iter_simulated_days(
        world.population, world.vocab, world.config, days, requests_per_day, "feedback", seed, non_displayed=True
    )
    for d, day in enumerate(simulated):
        write_logs(renumbered(day.non_displayed, d - days), day_log(directory, d - days))
    return directory


def day_log(folder: Path, day: int) -> Path:
    """The file of ``day``'s log in ``folder``, one a day (the history's days before day 0 negative: -2, -1)."""
    return folder / f"day{day}.parquet"


def history_logs(history: Path, trained_in: Path, days: int) -> list[tuple[Path, Path]]:
    """The history window's ``days`` days before day 0, each day's (displayed, non-displayed) log files: those
    ``run.py``'s ``_history`` writes in ``history`` and ``history_non_displayed`` under an esam retrieval's training
    folder ``trained_in``: what the seed's retrieval model trained on."""
    return [(day_log(history, d), day_log(trained_in / HISTORY_NON_DISPLAYED, d)) for d in range(-days, 0)]


def esam_config_text(source: Path) -> str:
    """The committed ESAM config with its training sized to the history window (``ESAM_TRAINING``)."""
    committed = source / ESAM_MODEL / "config.toml"
    if not committed.is_file():
        raise FileNotFoundError(
            f"no {committed}: --retrieval esam trains its model from it; run from the repository root or pass "
            "--configs PATH/models"
        )
    return with_overrides(committed.read_text(encoding="utf-8"), "training", ESAM_TRAINING)


def train_esam(world: World, history: Path, non_displayed: Path, source: Path, directory: Path) -> int:
    """ESAM trained on the displayed ``history`` and its ``non_displayed`` candidates (files or folders of them) and
    exported into ``directory / ESAM_REPOSITORY``, as ``ctr train esam --logs --non-displayed --spec`` and ``ctr
    export esam`` do; returns the version exported (a repository with versions already gets the next)."""
    from training.export import export_checkpoint
    from training.pipeline import train

    repository = directory / ESAM_REPOSITORY
    (repository / ESAM_MODEL).mkdir(parents=True, exist_ok=True)
    (repository / ESAM_MODEL / "config.toml").write_text(esam_config_text(source), encoding="utf-8")
    spec_path = directory / "spec.toml"
    spec_path.write_text(feature_spec(world.config).to_toml(), encoding="utf-8")
    started_at = time.perf_counter()
    checkpoint = train(
        ESAM_MODEL, repository, history, spec_path, directory / "work", progress=False, non_displayed=non_displayed
    )
    version = export_checkpoint(checkpoint, repository)
    logger.info(
        "retrieval: trained and exported %s version %d in %.1f s", ESAM_MODEL, version, time.perf_counter() - started_at
    )
    return version


@contextmanager
def serving_retrieval(repository: Path, log: Path, admin: bool = False) -> Iterator[RunningService]:
    """``ctr serve`` over ``repository``, whose only model is the retrieval model, as a retrieval service (no
    scoring role: ``CTR_CTR_MODEL=none CTR_CTCVR_MODEL=none``): yields it (its URL, and with ``admin`` the admin
    token it was started with, to load new versions; else none) once ``/v2/health/ready`` answers 200, the
    retrieval model loaded and warmed up; stopped (SIGINT, then a kill) however the block ends."""
    token = secrets.token_hex(16) if admin else ""
    env = {
        **dict.fromkeys(role_variables(), NO_MODEL),
        "CTR_RETRIEVAL_MODEL": ESAM_MODEL,
        "CTR_REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),  # an offline batch client, as the pipelines' services
        **({"CTR_ADMIN_TOKEN": token} if admin else {}),
    }
    with served(repository, log, env) as (url, _):
        logger.info("retrieval: %s serves %s from %s", url, ESAM_MODEL, repository)
        yield RunningService(url=url, token=token, log=log)


async def similarities(url: str, world: World, requests: DayRequests, concurrency: int) -> tuple[np.ndarray, list[int]]:
    """(R, P) ESAM similarity of each request's query (its context features) to each of its pool's ads, one
    ``/v1/similarity`` call a request, and the model versions that answered (sorted). A failed call stops the run
    (RuntimeError; the seeds that ended before it are written as a partial report): every pipeline of the seed is
    to see the same candidates, and a request without them would be one retriever's outage in all of them."""
    bodies = score_bodies(world, requests)
    scores = np.full(requests.ads.shape, np.nan)
    versions: set[int] = set()
    gate = asyncio.Semaphore(concurrency)
    async with AsyncScoringClient(url, max_connections=concurrency) as client:

        async def one(index: int, body: dict[str, Any]) -> None:
            async with gate:
                try:
                    reply = await client.similarity(body["context"], body["candidates"])
                except (ServiceError, httpx.HTTPError) as error:
                    raise RuntimeError(
                        f"retrieval: /v1/similarity failed for request {index} of day {requests.day}: "
                        f"{str(error) or type(error).__name__}"
                    ) from error
                scores[index] = reply.scores
                versions.add(reply.model.version)

        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return scores, sorted(versions)


def top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """(R, k) the columns of each row's k highest scores, in pool order (a tie goes to the earlier draw)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.sort(order, axis=1)


def gathered(requests: DayRequests, columns: np.ndarray) -> DayRequests:
    """``requests`` with their candidates, click and conversion draws taken at ``columns`` (R, K) of the pool."""

    def take(values: np.ndarray) -> np.ndarray:
        return np.take_along_axis(values, columns, axis=1)

    return replace(
        requests,
        ads=take(requests.ads),
        click_draw=take(requests.click_draw),
        conversion_draw=take(requests.conversion_draw),
    )


def retrieval_figures(pool_value: np.ndarray, pool_ctr: np.ndarray, columns: np.ndarray) -> dict[str, float]:
    """How much of a pool (R, P) the retrieved ``columns`` (R, K) hold, by the truth: the share of the pool's true
    top K by expected value per top-slot impression (``pool_value``: value per click x true CTR) that the retrieved
    K hold, the same share of its true top K by true CTR (``pool_ctr``: what a click model can know; the bids it
    cannot), and the retrieved candidates' mean true CTR and mean expected value over the pool's."""
    return {
        "retrieval_top_value_share": _top_share(pool_value, columns),
        "retrieval_top_ctr_share": _top_share(pool_ctr, columns),
        "retrieval_true_ctr_lift": float(np.take_along_axis(pool_ctr, columns, axis=1).mean() / pool_ctr.mean()),
        "retrieval_true_value_lift": float(np.take_along_axis(pool_value, columns, axis=1).mean() / pool_value.mean()),
    }


def _top_share(values: np.ndarray, columns: np.ndarray) -> float:
    """The share of each row's K highest ``values`` (K = ``columns``' width) that ``columns`` hold."""
    best = np.argsort(-values, axis=1, kind="stable")[:, : columns.shape[1]]
    return float((columns[:, :, None] == best[:, None, :]).any(axis=2).mean())


def retrieval_line(report: dict[str, Any]) -> str | None:
    """What a report's retriever held of its pools, in one line of ``ctr auction``'s table (one a pipeline where
    each retrained its own: ``retrain_retrieval``); None for the pool."""
    config = report.get("config", {})
    if config.get("retrieval", POOL) == POOL or not report.get("pipelines"):
        return None
    k, p = config["candidates"], config["pool"]
    if not config.get("retrain_retrieval"):  # the same candidates in every pipeline: the first one's say them
        total = next(iter(report["pipelines"].values()))["total"]
        return f"retrieval {config['retrieval']}, {k} of {p} ads a request: they hold {_held(total, k)}"
    return "\n".join(
        f"retrieval {config['retrieval']} retrained on the {name} pipeline's days, {k} of {p} ads a request: they "
        f"hold {_held(entry['total'], k)}"
        for name, entry in report["pipelines"].items()
    )


def _held(total: dict[str, Any], k: int) -> str:
    return (
        f"{total['retrieval_top_value_share']:.1%} of each pool's true top {k} by expected value per impression, "
        f"{total['retrieval_top_ctr_share']:.1%} of its top {k} by true CTR; their mean true CTR "
        f"{total['retrieval_true_ctr_lift']:.2f}x the pool's, their mean expected value "
        f"{total['retrieval_true_value_lift']:.2f}x"
    )
