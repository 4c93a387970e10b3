"""``ctr auction --retrieval esam --retrain-retrieval``: each pipeline's own ESAM retriever, retrained on its own days.

Day 0's candidates are the seed's, retrieved before any pipeline runs by the ESAM trained on the history window
(retrieval.py ``retrieved_days``): the same for every pipeline, so day 0 stays paired. Each pipeline then has a
copy of that model's repository and a retrieval service of its own over it (``serving_retrieval`` with an admin
token). Asked for day d + 1's candidates (after day d, which is never the last), it trains ESAM on its window of
logs: the displayed rows and the non-displayed candidates of its ``train_days`` latest days (the history's days
included, as its ranking models' window; the files ``day_logs`` names), or with ``--retrieval-window history-kept``
the history window's days always, then its own ``train_days`` latest days (``RETRIEVAL_WINDOWS``), exports the
next version into its repository, loads it through the admin API and confirms it in ``/v1/models``
(``reload_and_confirm``, as the ranking models are), then retrieves day d + 1's K candidates of each request from the
seed's pool with it. The pools of P ads and their outcome draws are the seed's (``draw_day``, the same in every
pipeline): only which K of each pool a pipeline retrieves differs between pipelines.

Each day's record holds, beside the retrieval figures, ``retrieval_versions`` (the versions that answered its
similarity calls: the one loaded before it) and what that version trained on: ``retrieval_window_rows`` (displayed
and non-displayed rows) and ``retrieval_window_ads`` (the distinct ads among them).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from clients.auction.retrain import ReloadRefused, reload_and_confirm
from clients.auction.retrieval import (
    ESAM,
    ESAM_MODEL,
    ESAM_REPOSITORY,
    RetrievedDay,
    SharedRetrieval,
    day_log,
    history_logs,
    retrieved_day,
    serving_retrieval,
    similarities,
    top_columns,
    train_esam,
)
from clients.auction.traffic import draw_day
from clients.client import AsyncScoringClient, ScoringClient
from clients.service_process import RunningService

if TYPE_CHECKING:
    from clients.auction.advertisers import Advertisers
    from clients.auction.run import AuctionConfig
    from training.world import World

logger = logging.getLogger(__name__)

RETRIEVAL_ROLE = {"retrieval": ESAM_MODEL}  # what ``reload_and_confirm`` loads and confirms
LATEST, HISTORY_KEPT = "latest", "history-kept"
RETRIEVAL_WINDOWS = (LATEST, HISTORY_KEPT)  # --retrieval-window: which days a retraining's window holds (window_days)


def check_retrieval_window(window: str, retrain: bool) -> None:
    """ValueError for a ``--retrieval-window`` that means nothing: an unknown one, or one other than the default
    without ``--retrain-retrieval`` (no retraining, no window)."""
    if window not in RETRIEVAL_WINDOWS:
        raise ValueError(f"--retrieval-window must be one of {list(RETRIEVAL_WINDOWS)}, got {window!r}")
    if window != LATEST and not retrain:
        raise ValueError(
            f"--retrieval-window {window} is the window each pipeline's retriever retrains on: give it with "
            "--retrain-retrieval"
        )


def day_logs(folder: Path, day: int) -> tuple[Path, Path]:
    """A pipeline's log files of ``day`` in ``folder``: its displayed impressions, its non-displayed candidates."""
    return day_log(folder, day), folder / f"day{day}_non_displayed.parquet"


@dataclass
class DailyRetrieval:
    """A pipeline's retriever, retrained on its own days (the module's docstring)."""

    config: AuctionConfig
    world: World
    advertisers: Advertisers
    seed: int
    first: RetrievedDay  # day 0, the seed's
    history: list[tuple[Path, Path]]  # the history window's days, oldest first: displayed, non-displayed logs
    logs: Path  # the folder the pipeline writes its days' logs to (``day_logs``)
    directory: Path  # its retriever's: the repository, the training work, the windows
    service: RunningService
    version: int  # the version it serves
    trained_on: dict[str, int]  # what that version trained on (``window_record``)

    async def day(self, day: int) -> RetrievedDay:
        """Day ``day``'s requests with this pipeline's retrieved candidates; from day 1, first retrained on the
        window ending the day before."""
        if day == 0:
            return replace(self.first, figures=self.first.figures | self._record([self.version]))
        await self._retrain(day - 1)
        config = self.config
        pool = draw_day(self.world, self.seed, day, config.requests_per_day, config.train_days, config.pool)
        scores, versions = await similarities(self.service.url, self.world, pool, config.concurrency)
        if versions != [self.version]:  # a reload by someone else: the day's candidates are not the version's
            raise RuntimeError(
                f"seed {self.seed} day {day}: the retrieval service answered with versions {versions}, not only "
                f"the {self.version} loaded before the day (see {self.service.log})"
            )
        retrieved = retrieved_day(
            self.world, self.advertisers, self.seed, ESAM, pool, top_columns(scores, config.candidates)
        )
        return replace(retrieved, figures=retrieved.figures | self._record(versions))

    def _record(self, versions: list[int]) -> dict[str, Any]:
        return {"retrieval_versions": versions, **self.trained_on}

    def window(self, day: int) -> list[tuple[Path, Path]]:
        """The log files of the window ending on ``day`` (``window_days``)."""
        return window_days(self.history, self.logs, day, self.config.train_days, self.config.retrieval_window)

    async def _retrain(self, day: int) -> None:
        """ESAM trained on the window ending on ``day``, exported, loaded and confirmed; ReloadRefused where the
        service refused it or its version did not increase."""
        folder = self.directory / f"window_day{day}"
        window = self.window(day)
        for kind, files in (("displayed", [d for d, _ in window]), ("non_displayed", [n for _, n in window])):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            for file in files:  # one folder of each, as ``ctr train esam --logs DIR --non-displayed DIR`` takes
                shutil.copyfile(file, folder / kind / file.name)
        trained_on = window_record(window)
        version = train_esam(
            self.world, folder / "displayed", folder / "non_displayed", self.config.model_source, self.directory
        )
        shutil.rmtree(folder)
        async with AsyncScoringClient(self.service.url) as client:
            await reload_and_confirm(client, self.service.token, RETRIEVAL_ROLE, {"retrieval": version})
        if version <= self.version:
            raise ReloadRefused(f"the retrieval model's version did not increase ({self.version} -> {version})")
        logger.info(
            "seed %d: retrieval retrained on %s's window after day %d (%s): serves %s version %d",
            self.seed, self.logs.parent.name, day, trained_on, ESAM_MODEL, version,
        )  # fmt: skip
        self.version, self.trained_on = version, trained_on


def window_days(
    history: list[tuple[Path, Path]], logs: Path, day: int, train_days: int, window: str
) -> list[tuple[Path, Path]]:
    """The log files a retraining after ``day`` trains on, oldest first (``RETRIEVAL_WINDOWS``): ``latest``, the
    ``train_days`` latest days, the pipeline's (in ``logs``), then the ``history``'s before them; ``history-kept``,
    the history's days, then the pipeline's ``train_days`` latest."""
    own = [day_logs(logs, d) for d in range(day + 1)][-train_days:]
    return [*history, *own] if window == HISTORY_KEPT else [*history, *own][-train_days:]


def window_record(window: list[tuple[Path, Path]]) -> dict[str, int]:
    """The rows (displayed and non-displayed) of a window of log files, and the distinct ads among them."""
    ads = [pq.read_table(file, columns=["ad_idx"]).column("ad_idx").to_numpy() for day in window for file in day]
    return {
        "retrieval_window_rows": sum(len(a) for a in ads),
        "retrieval_window_ads": len(np.unique(np.concatenate(ads))),
    }


@contextmanager
def pipeline_retrieval(
    shared: SharedRetrieval | None,
    config: AuctionConfig,
    world: World,
    advertisers: Advertisers,
    seed: int,
    directory: Path,
) -> Iterator[SharedRetrieval | DailyRetrieval | None]:
    """Where the pipeline in ``directory`` takes its days' candidates from: the seed's ``shared`` ones (None: the
    eligible pool), or with ``config.retrain_retrieval`` a ``DailyRetrieval`` of its own, its service stopped when
    the block ends."""
    if shared is None or not config.retrain_retrieval:
        yield shared
        return
    assert shared.trained_in is not None and shared.history is not None  # an esam retrieval's: retrieved_days
    retriever = directory / "retrieval"
    shutil.rmtree(retriever, ignore_errors=True)
    shutil.copytree(shared.trained_in / ESAM_REPOSITORY, retriever / ESAM_REPOSITORY)
    history = history_logs(shared.history, shared.trained_in, config.train_days)
    with serving_retrieval(retriever / ESAM_REPOSITORY, retriever / "service.log", admin=True) as service:
        with ScoringClient(service.url) as client:
            version = next(m.version for m in client.models() if m.name == ESAM_MODEL)
        yield DailyRetrieval(
            config=config,
            world=world,
            advertisers=advertisers,
            seed=seed,
            first=shared.days[0],
            history=history,
            logs=directory / "logs",
            directory=retriever,
            service=service,
            version=version,
            trained_on=window_record(history),
        )
