"""The auction experiment: for each seed, each pipeline runs the same days of traffic through its
own scorer, logs what happened, retrains on its last days of logs and hot-loads the new versions.

    report = run_auction(AuctionConfig(days=5, requests_per_day=3000, slots=3, seeds=3))

Service pipelines start their own ``ctr serve`` (one per pipeline and seed, each on its own model
repository) and stop it at the end, even on error. Before day 0 every service pipeline trains its
first versions on ``train_days`` days of the world's feedback-loop logs of the same seed (the
platform's history); after each day but the last it retrains on its ``train_days`` latest days.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import resource
import shutil
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cli.errors import one_line
from cli.signals import SIGTERM_EXIT_CODE
from clients.auction.advertisers import Advertisers
from clients.auction.day import SlotRatios, run_day
from clients.auction.explore import EXPLORING, check_explore, slice_rows
from clients.auction.pipelines import (
    BASE_RATE_PIPELINES,
    RANDOM,
    SERVICE_PIPELINES,
    BaseRates,
    DayScores,
    check_pipelines,
    constant_scores,
    model_configs,
    oracle_scores,
    service_scores,
    write_model_configs,
)
from clients.auction.report import finished_seeds, summarise
from clients.auction.retrain import ReloadRefused, Timings, Trainer, reload_and_confirm
from clients.auction.retrieval import (
    ESAM,
    ESAM_MODEL,
    POOL,
    RETRIEVAL_ROLE,
    Retrieval,
    check_retrieval,
    day_log,
    esam_config_text,
    retrieved_days,
)
from clients.auction.retrieval_daily import LATEST, check_retrieval_window, day_logs, pipeline_retrieval
from clients.auction.served_features import check_served_features, feature_mismatch
from clients.auction.traffic import draw_day
from clients.auction.uniform import uniform_draws
from clients.client import (
    AsyncScoringClient,
    ModelStatus,
    ScoringClient,
    ServiceError,
    require_admin,
    require_ready,
)
from clients.service_process import RunningService, running_service
from common.config_layout import read_checked_config
from common.shown_url import shown_url
from training.world import World, WorldConfig, feature_spec, write_logs
from training.world.logs import renumbered
from training.world.traffic import SECONDS_PER_DAY

logger = logging.getLogger(__name__)

ADVERTISER_STREAM = 17  # keys the advertisers' draw apart from the traffic's
ESAM_RECORD = "retrieval"  # model_configs' entry of the retrieval model (--retrieval esam)


@dataclass(frozen=True)
class AuctionConfig:
    days: int = 5  # auction days per pipeline; the models are retrained after each day but the last
    requests_per_day: int = 2000  # auctions a day
    slots: int = 3  # S: ads shown per request
    candidates: int = 10  # K: eligible candidates per request (the world's popularity-drawn pool)
    pipelines: tuple[str, ...] = ("naive", "debiased", "oracle")
    seeds: int = 3  # seeds first_seed..first_seed+seeds-1: each its own world, advertisers, traffic and models
    first_seed: int = 0  # a run split across machines: each part its own seeds, each seed the same in any part
    train_days: int = 2  # retrain on this many latest days of logs (history days before day 0 included)
    batch_size: int = 128  # [training] batch_size of the pipelines' models: ~100 Adam steps per window
    reserve: float = 0.2  # reserve price per click
    ocpa_share: float = 0.5  # share of advertisers bidding oCPA (the rest bid CPC)
    concurrency: int = 16  # scoring requests in flight
    work_dir: Path = Path("artifacts/auction")  # logs, repositories, checkpoints, service logs
    model_source: Path = Path("models")  # the committed configs the pipelines' repositories start from
    ctr_model: str = "ctr"  # the debiased pipeline's role models (the service's defaults when its reports were made)
    ctcvr_model: str = "esmm"
    progress: bool = True
    # A service already running (--url) scores the one service pipeline instead of one started here; with
    # its model repository and admin token the loop is closed through it (retrained into ``repository``,
    # reloaded by the admin API), without them it only scores.
    url: str | None = None
    repository: Path | None = None  # the running service's model repository (CTR_MODEL_REPOSITORY)
    admin_token: str | None = None  # its CTR_ADMIN_TOKEN
    # where the K candidates come from: the eligible pool, or a retriever's top K of a pool of ``pool`` ads
    # (clients/auction/retrieval.py: "first", "esam"), shared by every pipeline of a seed
    retrieval: str = POOL
    pool: int | None = None
    # with retrieval "esam": each pipeline retrains its own retriever on its own days (retrieval_daily.py)
    retrain_retrieval: bool = False
    # with retrain_retrieval: the days its window holds (retrieval_daily.py's RETRIEVAL_WINDOWS)
    retrieval_window: str = LATEST
    # the share of each day's requests the pipelines scored from their own logs order uniformly (an exploration
    # slice, clients/auction/explore.py); 0: none, the run as before
    explore: float = 0.0

    def __post_init__(self) -> None:
        check_pipelines(list(self.pipelines))
        check_explore(self.explore, self.pipelines)
        check_retrieval(self.retrieval, self.pool, self.candidates, self.retrain_retrieval)
        check_retrieval_window(self.retrieval_window, self.retrain_retrieval)
        if self.url is not None and self.retrain_retrieval:
            raise ValueError(
                "--retrain-retrieval trains each pipeline's own retriever, served by the run's own services: not "
                "with --url (whose --retrieval esam retrieves with the running service's own retrieval model)"
            )
        if min(self.days, self.requests_per_day, self.slots, self.seeds, self.train_days, self.concurrency) < 1:
            raise ValueError("days, requests_per_day, slots, seeds, train_days and concurrency must be >= 1")
        if self.first_seed < 0:  # numpy's SeedSequence takes no negative entropy
            raise ValueError(f"--first-seed must be >= 0, got {self.first_seed}")
        if self.url is not None:
            served_by_it = [p for p in self.pipelines if p in SERVICE_PIPELINES]
            if len(served_by_it) != 1:
                raise ValueError(  # the default --pipelines have both: "got [naive, debiased, oracle]" said no fix
                    f"--url scores exactly one pipeline through the running service, {' or '.join(SERVICE_PIPELINES)}, "
                    f"and --pipelines {','.join(self.pipelines)} holds {len(served_by_it)}: name one, e.g. "
                    "--pipelines debiased,oracle (the others, oracle, constant and random, need no service)"
                )
            if (self.repository is None) != (self.admin_token is None):
                raise ValueError("--repository and --admin-token go together: both to retrain through the service")
        elif self.repository is not None or self.admin_token is not None:
            raise ValueError("--repository and --admin-token are for a running service (--url)")
        if not math.isfinite(self.reserve) or self.reserve < 0:  # --reserve inf was taken: no ad would ever show
            raise ValueError(f"--reserve must be a finite price per click >= 0, got {self.reserve}")
        if self.candidates <= self.slots:
            raise ValueError(
                f"candidates ({self.candidates}) must exceed slots ({self.slots}): GSP prices need a loser"
            )

    @property
    def roles(self) -> dict[str, str]:
        """Role -> the model the debiased pipeline scores it by (the naive one's are its own: pipelines.py)."""
        return {"ctr": self.ctr_model, "ctcvr": self.ctcvr_model}

    @property
    def seed_range(self) -> range:
        return range(self.first_seed, self.first_seed + self.seeds)

    def world(self, seed: int) -> World:
        return World(WorldConfig(seed=seed, n_slots=self.slots, n_candidates=self.candidates))

    def advertisers(self, world: World, seed: int) -> Advertisers:
        """The advertisers of ``seed``'s world: the same in every pipeline (and in reports/auction_score_bias.py)."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, ADVERTISER_STREAM]))
        return Advertisers.draw(world, rng, self.ocpa_share)


@dataclass
class PipelineRun:
    seed: int = 0
    days: list[dict[str, Any]] = field(default_factory=list)  # appended as each day ends: kept when a run is stopped
    aborted: str | None = None  # why the pipeline stopped early (a refused reload, a day of failed calls), else None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DayLog:
    """A day's log of displayed impressions, with its rows, clicks and conversions counted as written: a
    retraining window's impressions (and the base-rate pipelines' rates) are counted without reading the files back."""

    path: Path
    rows: int
    clicks: int
    conversions: int

    @classmethod
    def written(cls, table: pa.Table, path: Path) -> DayLog:
        """``table`` written to ``path`` (write_logs), counted."""

        def total(column: str) -> int:
            return int(pc.sum(table.column(column)).as_py() or 0)

        return cls(write_logs(table, path), table.num_rows, total("click"), total("conversion"))


def window_rates(window: list[DayLog]) -> BaseRates:
    """The base-rate pipelines' pCTR and pCVR: the window's clicks per impression and conversions per click."""
    counts = (sum(log.rows for log in window), sum(log.clicks for log in window))
    return BaseRates.of_counts(*counts, sum(log.conversions for log in window))


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or an error after at least one day had run: ``report`` is the completed days' (marked
    ``partial``), ``stop`` the KeyboardInterrupt, SystemExit or error to raise again once it is written (exit 130 or
    143; an error ends as it would have)."""

    def __init__(self, report: dict[str, Any], stop: BaseException) -> None:
        super().__init__("interrupted")
        self.report, self.stop = report, stop


def run_auction(config: AuctionConfig) -> dict[str, Any]:
    """Every pipeline on every seed; the report (clients.auction.report). Interrupted (Ctrl-C, SIGTERM) or stopped by
    an error (a trainer, a service or a retriever that failed) after a day had run, ``Interrupted`` with the report of
    the days that had: hours of days were lost before (an error in a run's last seed lost every seed before it)."""
    served: dict[str, dict[str, Any]] | None = None
    if config.url is not None:
        require_ready(config.url)
        if config.admin_token is not None:
            require_admin(config.url, config.admin_token)
        with ScoringClient(config.url) as client:
            models = client.models()
        served = served_models(models)
        check_served_features(config.url, models)
        if config.repository is not None:
            check_configs(config.repository, served)
        for line in regime_warnings(next(p for p in config.pipelines if p in SERVICE_PIPELINES), served):
            logger.warning("%s", line)
        if config.retrieval == ESAM:  # the running service's own retrieval model, said before day 0
            served |= served_retriever(config.url, models)
    digests = config_digests(config) if config.url is None else None  # a missing config said before day 0
    started = time.perf_counter()
    load_before = os.getloadavg()
    runs: dict[str, list[PipelineRun]] = {name: [] for name in config.pipelines}
    stop: BaseException | None = None
    try:
        for seed in config.seed_range:
            world = config.world(seed)
            advertisers = config.advertisers(world, seed)
            seed_dir = config.work_dir / f"seed{seed}"
            shutil.rmtree(seed_dir, ignore_errors=True)
            # a running service has its versions; the base-rate pipelines' day-0 rates are the history's
            needs_history = (
                (_needs_service(config) and config.url is None)
                or any(name in BASE_RATE_PIPELINES for name in config.pipelines)
                or (config.retrieval == ESAM and config.url is None)  # its retrieval model trains on the history
            )
            history = _history(world, config, seed, seed_dir / "history") if needs_history else []
            history_dir = seed_dir / "history" if needs_history else None
            traffic = None  # the eligible pool, drawn day by day
            if config.retrieval != POOL:  # retrieved once, before the pipelines, for all of them (day 0 alone
                # where each pipeline retrains its own retriever)
                traffic = retrieved_days(config, world, advertisers, seed, history_dir, seed_dir / "retrieval")
            for name in config.pipelines:
                logger.info("seed %d: pipeline %s", seed, name)
                run = PipelineRun(seed=seed)
                runs[name].append(run)  # before its days: those that end are kept if the run is stopped
                with pipeline_retrieval(traffic, config, world, advertisers, seed, seed_dir / name) as days:
                    _run_pipeline(run, name, world, advertisers, history, days, config, seed_dir / name)
    except (KeyboardInterrupt, SystemExit) as interruption:  # SIGTERM is SystemExit(143): cli/signals.py
        signalled = isinstance(interruption, KeyboardInterrupt) or interruption.code == SIGTERM_EXIT_CODE
        if not signalled or not any(run.days for per_seed in runs.values() for run in per_seed):
            raise  # another exit (a library's sys.exit) is no SIGTERM to write a partial report of
        stop = interruption
    except Exception as error:  # the finished seeds' days are kept; the error is raised again once they are written
        if not any(run.days for per_seed in runs.values() for run in per_seed):
            raise
        stop = error
    report = summarise(runs, _config_dict(config), time.perf_counter() - started)
    if digests is not None:
        report["model_configs"] = digests
    if served is not None:  # the config names the run's defaults, not what the service at --url served
        report["served_models"] = served
        if config.repository is not None:  # retrained into: the operator is told what it serves now
            report["served_models_at_end"] = _served_at_end(config.url)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    report["seconds"] |= {  # CPU seconds: this process (client, trainer) and the services it started
        "cpu_client_and_training": own.ru_utime + own.ru_stime,
        "cpu_services": children.ru_utime + children.ru_stime,
    }
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_1m": {"start": load_before[0], "end": os.getloadavg()[0]},
    }
    if stop is not None:
        report["partial"] = partial_record(runs, config, stop)
        raise Interrupted(report, stop)
    return report


def partial_record(runs: dict[str, list[PipelineRun]], config: AuctionConfig, stop: BaseException) -> dict[str, Any]:
    """What an interrupted run's report holds and what it lacks. ``days_completed``: pipeline -> seed -> the days
    it holds, as ``pipelines[name].seeds`` does (a seed started but stopped before its first day ended was listed
    with 0, and one never started not at all: half a list of what was not run). ``seeds_finished``: the seeds
    every pipeline ran to the end, as a whole run gives them (``ctr auction-merge --allow-partial`` takes these);
    ``seeds_unfinished``: the rest of the run's seeds, the one it was stopped in and those after it, to run again.
    ``interrupted_by``: SIGINT, SIGTERM or "error"; ``error``: an error's type and first line."""
    finished = finished_seeds(runs, list(config.pipelines), config.days)
    record: dict[str, Any] = {"interrupted_by": _stopped_by(stop)}
    if isinstance(stop, Exception):
        record["error"] = f"{type(stop).__name__}: {one_line(stop)}"
    return record | {
        "days_completed": {
            name: {str(r.seed): len(r.days) for r in per_seed if r.days}
            for name, per_seed in runs.items()
            if any(r.days for r in per_seed)
        },
        "seeds_finished": finished,
        "seeds_unfinished": [seed for seed in config.seed_range if seed not in finished],
    }


def _stopped_by(stop: BaseException) -> str:
    if isinstance(stop, KeyboardInterrupt):
        return "SIGINT"
    return "SIGTERM" if isinstance(stop, SystemExit) else "error"


def rerun_command(seeds: list[int]) -> str:
    """The ``ctr auction`` that runs ``seeds`` (contiguous: an interrupted run's unfinished ones) again."""
    return f"`ctr auction --first-seed {seeds[0]} --seeds {len(seeds)}`"


def _served_at_end(url: str) -> dict[str, dict[str, Any]] | None:
    """What the service at ``url`` serves after the run's reloads; None when it does not say (gone, or not
    ready): the report's last line names the failure rather than a version it did not confirm."""
    try:
        with ScoringClient(url) as client:
            return served_models(client.models())
    except (ServiceError, httpx.HTTPError) as error:
        logger.error("the service at %s did not list its models after the run: %s", url, error)
        return None


def config_digests(config: AuctionConfig) -> dict[str, dict[str, str]]:
    """Service pipeline -> model -> sha256 of the settings of the config.toml its models train with (``--configs``'
    files as the pipeline's repository gets them; its tables as sorted JSON, so a comment or a layout does not
    count): the parts of a split run, on checkouts whose configs differ, trained other models under the same
    options, and no report said so (``ctr auction-merge`` compares these). With ``--retrieval esam``, ``retrieval``
    -> its model -> the same of its config."""
    digests = {
        name: {
            model: _settings_digest(text)
            for model, text in model_configs(name, config.model_source, config.roles, config.batch_size).values()
        }
        for name in config.pipelines
        if name in SERVICE_PIPELINES
    }
    if config.retrieval == ESAM:
        digests[ESAM_RECORD] = {ESAM_MODEL: _settings_digest(esam_config_text(config.model_source))}
    return digests


def _settings_digest(text: str) -> str:
    """sha256 of a config.toml's tables as sorted JSON: a comment or a layout does not count."""
    return hashlib.sha256(json.dumps(tomllib.loads(text), sort_keys=True).encode()).hexdigest()


def _needs_service(config: AuctionConfig) -> bool:
    return any(name in SERVICE_PIPELINES for name in config.pipelines)


def _history(world: World, config: AuctionConfig, seed: int, directory: Path) -> list[DayLog]:
    """``train_days`` days of the world's feedback-loop logs before day 0, one file a day, its requests named as its
    days' (``d-2-r0``: the pipeline's own day 0 is ``d0``)."""
    table = world.simulate(days=config.train_days, requests_per_day=config.requests_per_day, seed=seed)
    day = pc.divide(pc.subtract(table.column("ts"), world.config.start_ts), SECONDS_PER_DAY)
    return [
        DayLog.written(
            renumbered(table.filter(pc.equal(day, d)), d - config.train_days), day_log(directory, d - config.train_days)
        )
        for d in range(config.train_days)
    ]


def _run_pipeline(
    run: PipelineRun,
    name: str,
    world: World,
    advertisers: Advertisers,
    history: list[DayLog],
    traffic: Retrieval | None,
    config: AuctionConfig,
    directory: Path,
) -> None:
    """``run``'s days, appended as each ends; ``traffic``: each day's requests with their retrieved candidates
    (None: the eligible pool, drawn day by day)."""
    if name not in SERVICE_PIPELINES:
        asyncio.run(_days(run, name, world, advertisers, config, directory, history, traffic=traffic))
        return
    if config.url is not None:
        asyncio.run(_running(run, name, world, advertisers, config, directory, traffic))
        return
    repository = directory / "models"
    names = write_model_configs(repository, name, config.model_source, config.roles, config.batch_size)
    spec_path = directory / "spec.toml"
    spec_path.write_text(feature_spec(world.config).to_toml(), encoding="utf-8")
    trainer = Trainer(repository, directory / "work", spec_path, names)
    trainer.train_window([log.path for log in history], "history")
    with running_service(repository, names, directory / "service.log") as service:
        asyncio.run(_days(run, name, world, advertisers, config, directory, history, trainer, service, traffic=traffic))


def served_models(models: list[ModelStatus]) -> dict[str, dict[str, Any]]:
    """Role -> the model a running service serves in it at the start: name, version, its model.onnx's sha256
    and position regime (``config`` names ctr + esmm whatever the service at --url served)."""
    return {
        role: {"name": m.name, "version": m.version, "sha256": m.sha256, "regime": (m.position or {}).get("regime")}
        for m in models
        for role in m.roles
        if role in ("ctr", "ctcvr")
    }


def served_retriever(url: str, models: list[ModelStatus]) -> dict[str, dict[str, Any]]:
    """``served_models``' entry of the retrieval model the service at ``url`` serves (``--retrieval esam`` with
    ``--url`` retrieves with it); ValueError, before day 0, where it serves none, one not loaded, or one whose
    towers cannot answer the world's similarity calls (``served_features.feature_mismatch``; such a model was found
    at the first call, in a traceback)."""
    retriever = next((m for m in models if RETRIEVAL_ROLE in m.roles), None)
    if retriever is None or not retriever.ready:
        state = "serves no retrieval model" if retriever is None else f"has not loaded {retriever.name!r}"
        raise ValueError(
            f"--retrieval esam --url {shown_url(url)}: the service {state}; start it with CTR_RETRIEVAL_MODEL naming "
            "an ESAM model trained on the world's logs (or run --retrieval esam without --url, which trains one)"
        )
    mismatch = feature_mismatch([retriever], "similarity call")
    if mismatch is not None:
        raise ValueError(
            f"--retrieval esam --url {shown_url(url)}: the towers of the service's retrieval model {retriever.name!r} "
            f"{mismatch}: serve an ESAM model trained on the world's logs (or run --retrieval esam without --url, "
            "which trains one)"
        )
    return {RETRIEVAL_ROLE: {"name": retriever.name, "version": retriever.version, "sha256": retriever.sha256}}


def check_configs(repository: Path, served: dict[str, dict[str, Any]]) -> None:
    """Each served model's config.toml in ``repository``, which the retraining reads: a missing one was found
    after a day's scoring and a training (``no config for model 'esmm'``), now before day 0."""
    for name in dict.fromkeys(m["name"] for m in served.values()):
        try:
            read_checked_config(repository, name)
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"--repository {repository}: the service at --url serves {name!r}, which is retrained from it: "
                f"{error}; pass the running service's model repository (its CTR_MODEL_REPOSITORY)"
            ) from None


def regime_warnings(pipeline: str, served: dict[str, dict[str, Any]]) -> list[str]:
    """A debiased pipeline scored by a model trained on logged positions (position-blind) is not debiased."""
    if pipeline != "debiased":
        return []
    return [
        f"the debiased pipeline's {role} model {m['name']} version {m['version']} is in the 'logged' "
        "position regime (position-blind): its figures are not a debiased model's; serve a slot1 model or name "
        "the pipeline naive"
        for role, m in served.items()
        if m["regime"] == "logged"
    ]


def stale_versions(served: dict[str, list[int]], expected: dict[str, int]) -> dict[str, list[int]]:
    """The versions a day was scored by, of the roles the auction prices by, where they are not the one
    loaded before the day. A service may fill more roles than the auction's two: a third one's crashed the
    run (KeyError)."""
    return {role: versions for role, versions in served.items() if role in expected and versions != [expected[role]]}


async def _running(
    run: PipelineRun,
    name: str,
    world: World,
    advertisers: Advertisers,
    config: AuctionConfig,
    directory: Path,
    traffic: Retrieval | None = None,
) -> None:
    """The pipeline scored by the service at ``config.url``; its role models are the ones it serves; ``traffic``:
    each day's retrieved candidates (None: the eligible pool)."""
    async with AsyncScoringClient(config.url) as client:
        models = await client.models()
    names = {role: m.name for m in models for role in m.roles if role in ("ctr", "ctcvr")}
    trainer = None
    if config.repository is not None:
        spec_path = directory / "spec.toml"
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(feature_spec(world.config).to_toml(), encoding="utf-8")
        trainer = Trainer(config.repository, directory / "work", spec_path, names)
    service = RunningService(url=config.url, token=config.admin_token or "", log=directory / "service.log")
    await _days(run, name, world, advertisers, config, directory, None, trainer, service, names, traffic=traffic)


async def _days(
    run: PipelineRun,
    name: str,
    world: World,
    advertisers: Advertisers,
    config: AuctionConfig,
    directory: Path,
    history: list[DayLog] | None = None,
    trainer: Trainer | None = None,
    service: RunningService | None = None,
    names: dict[str, str] | None = None,
    *,
    traffic: Retrieval | None = None,
) -> None:
    """The pipeline's days: scored by the service (then retrained and reloaded when there is a
    ``trainer``), by the base rates of its last days of logs (``constant`` and ``random``, which shows its eligible
    candidates in a uniformly random order: recomputed after each day, as a service pipeline retrains), or by the
    truth, into ``run``. ``names``: role -> served model (the trainer's when it has one)."""
    seed = run.seed
    logs = list(history or [])
    rates = None
    if name in BASE_RATE_PIPELINES:  # a history without a click: a pipeline stopped before its first day had no entry
        try:
            rates = window_rates(logs[-config.train_days :])
        except ValueError as error:
            raise ValueError(
                f"seed {seed}: the {name} pipeline's day-0 rates are the history's: {error}; run more "
                "--requests-per-day or --train-days"
            ) from None
    reload_s = scoring_s = 0.0
    names = trainer.names if trainer is not None else names
    client = None if service is None else AsyncScoringClient(service.url, max_connections=config.concurrency)
    try:
        if client is not None and names is not None:
            models = await client.models()
            expected = {role: _served(models, model) for role, model in names.items()}
            ratios = _published_ratios(models, names["ctr"])
        for day in range(config.days):
            if traffic is None:
                requests, retrieval = draw_day(world, seed, day, config.requests_per_day, config.train_days), {}
            else:  # the retrieved candidates: the seed's, or the pipeline's own retriever's (--retrain-retrieval)
                retrieved = await traffic.day(day)
                requests, retrieval = retrieved.requests, retrieved.figures
            if client is not None:
                scores = await service_scores(client, world, requests, config.concurrency, config.progress)
            elif rates is not None:  # position-blind, as the naive pipeline: no slot ratios
                scores, ratios = constant_scores(requests, rates), None
            else:  # the oracle knows the truth, its slot factors included
                scores, ratios = oracle_scores(world, requests), SlotRatios.of_world(world)
            scoring_s += scores.seconds
            explored = slice_rows(config.explore, world.config.seed, seed, day, len(requests))
            explored = explored if name in EXPLORING else None
            uniform = name == RANDOM or explored is not None
            order = uniform_draws(world.config.seed, seed, day, requests.ads.shape) if uniform else None
            outcome = run_day(world, advertisers, requests, scores, config.reserve, ratios, order, explored)
            metrics = outcome.metrics | _service_metrics(scores) | retrieval
            if client is not None:
                metrics["stale_versions"] = stale_versions(scores.model_versions, expected)
            if rates is not None:
                metrics["constant_rates"] = asdict(rates)
            run.days.append(metrics)
            displayed_path, non_displayed_path = day_logs(directory / "logs", day)
            logs.append(DayLog.written(outcome.displayed, displayed_path))
            write_logs(outcome.non_displayed, non_displayed_path)
            logger.info(
                "seed %d %s day %d: welfare %.1f revenue %.1f errors %d versions %s",
                seed, name, day, metrics["welfare"], metrics["revenue"], metrics["errors"], metrics["model_versions"],
            )  # fmt: skip
            # asyncio.run's Ctrl-C cancels the task at its next await: the oracle's days had none, and it ran
            # every day before the KeyboardInterrupt came
            await asyncio.sleep(0)
            if client is not None and scores.errors == len(requests):  # a dead service: no day after this one
                # the day is kept, its failures counted (scoring_warnings says them): a pipeline left without
                # days had no figures, and the table and plot of a service dead from day 0 ended in a traceback
                commonest = max(scores.error_kinds, key=scores.error_kinds.get)
                run.aborted = f"day {day}: all {scores.errors} scoring calls failed, most often {commonest!r}"
                logger.error("seed %d pipeline %s stopped: %s", seed, name, run.aborted)
                break
            if (trainer is None and rates is None) or day == config.days - 1:
                continue
            window = logs[-config.train_days :]
            # a window with no impressions: the trainer said only "impression log ... has no rows", a day late
            if not sum(log.rows for log in window):
                run.aborted = f"no ad cleared the reserve {config.reserve} on day {day}: nothing to train on"
                logger.error("seed %d pipeline %s stopped: %s", seed, name, run.aborted)
                break
            if rates is not None:  # the base-rate pipelines' retraining
                try:
                    rates = window_rates(window)
                except ValueError as error:
                    run.aborted = f"day {day}: {error}"
                    logger.error("seed %d pipeline %s stopped: %s", seed, name, run.aborted)
                    break
                continue
            exported = trainer.train_window([log.path for log in window], f"day{day}")
            try:
                reload_s += await reload_and_confirm(client, service.token, trainer.names, exported)
                if any(exported[r] <= expected[r] for r in exported):
                    raise ReloadRefused(f"versions did not increase ({expected} -> {exported})")
            except ReloadRefused as error:
                run.aborted = f"day {day}: {error}"
                logger.error("seed %d pipeline %s stopped: %s", seed, name, error)
                break
            expected = exported
            ratios = _published_ratios(await client.models(), names["ctr"])
    finally:
        if client is not None:
            await client.aclose()
    training = trainer.timings if trainer is not None else Timings()
    run.timings = asdict(training) | {"reload": reload_s, "scoring": scoring_s}


def _served(models: list[ModelStatus], name: str) -> int:
    for model in models:
        if model.name == name and model.version is not None:
            return model.version
    raise ReloadRefused(f"the service does not serve {name}")


def _published_ratios(models: list[ModelStatus], ctr_name: str) -> SlotRatios | None:
    """The ctr model's ``position.ctr_ratios`` from /v1/models, when the service publishes them."""
    for model in models:
        if model.name == ctr_name and model.position and model.position.get("ctr_ratios"):
            return SlotRatios(values=[float(r) for r in model.position["ctr_ratios"]], source="service")
    return None


def _service_metrics(scores: DayScores) -> dict[str, Any]:
    latencies = np.asarray(scores.latencies_ms)
    return {
        "p50_ms": float(np.percentile(latencies, 50)) if latencies.size else None,
        "p99_ms": float(np.percentile(latencies, 99)) if latencies.size else None,
        "errors": scores.errors,
        "error_kinds": scores.error_kinds,
        "resent": scores.resent,
        "retried": scores.retried,
        "model_versions": scores.model_versions,
        "scoring_seconds": scores.seconds,
    }


def _config_dict(config: AuctionConfig) -> dict[str, Any]:
    """The config as the report shows it: paths as text, never the admin token; ``retrieval`` and ``pool`` only
    where a retriever chose the candidates (a run of the eligible pool writes the report it wrote before them),
    ``retrain_retrieval`` only where the pipelines retrained their retrievers, ``retrieval_window`` only where
    their window was not the latest days, and ``explore`` only where there was a slice."""
    left_out = {"admin_token"} | ({"retrieval", "pool"} if config.retrieval == POOL else set())
    left_out |= set() if config.retrain_retrieval else {"retrain_retrieval"}  # a run without it: the report of before
    left_out |= {"retrieval_window"} if config.retrieval_window == LATEST else set()  # as before the option
    left_out |= {"explore"} if config.explore == 0 else set()  # a run without a slice writes the report it wrote
    return {
        k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
        for k, v in asdict(config).items()
        if k not in left_out
    }
