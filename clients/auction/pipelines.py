"""Where each pipeline's pCTR and pCVR come from.

- ``naive``: the live service with a position-blind CTR model (the adversarial network with lambda 0
  and no bypass: a plain click model that ignores position) and plain ESMM (``esmm_blind``, no
  position bypass) for the ctcvr role: both in the "logged" position regime;
- ``debiased``: the live service with the served defaults (the ``ctr`` and ``ctcvr`` roles' default
  models, today the position-debiased adversarial CTR and ESMM);
- ``constant``: one pCTR and one pCVR for every candidate of a day, the click rate and the conversions-per-click
  rate of its own last ``train_days`` days of logs (the history window on day 0): no service, no model, the
  untrained baseline (a constant pCTR ranks CPC ads by bid and oCPA ads by their CPA);
- ``random``: the constant pipeline's pCTR and pCVR (the same base rates of its own logs), its eligible candidates
  shown in a uniformly random order at the reserve price (clients/auction/uniform.py): uniform exploration, the floor;
- ``oracle``: the world's true top-slot CTR (with the hour) and true CVR: no service, the ceiling.

Service pipelines score every request of a day over HTTP, many in flight at once through the
async client; a failed call is counted and its request shows no ad (the run goes on; ``ctr auction`` says
so at the end and exits 1, and a day whose calls all failed stops the pipeline: clients/auction/run.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from clients.auction.config_overrides import with_overrides
from clients.auction.traffic import DayRequests, score_bodies
from clients.client import AsyncScoringClient, ServiceError
from common.plural import counted
from training.world import World

logger = logging.getLogger(__name__)

SERVICE_PIPELINES = ("naive", "debiased")
CONSTANT = "constant"
RANDOM = "random"
BASE_RATE_PIPELINES = (CONSTANT, RANDOM)  # scored by the base rates of their own last days of logs
PIPELINES = (*SERVICE_PIPELINES, *BASE_RATE_PIPELINES, "oracle")
NAIVE_CTR_MODEL = "ctr_naive"  # the naive pipeline's ctr-role model name in its own repository
NAIVE_CTCVR_MODEL = "esmm_blind"  # committed config of ESMM as published (no position bypass: "logged" regime)
NAIVE_CTR_OVERRIDES = {"lam": 0.0, "bypass": False}  # the adversarial CTR network reduced to a plain click model
WARNED_FAILURES = 5  # failed calls of a day warned one by one; the rest in one count (a dead service gave 5,017 lines)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class DayScores:
    pctr: np.ndarray  # (R, K) top-slot pCTR, NaN where the call failed
    pcvr: np.ndarray  # (R, K) pCVR, NaN where the call failed
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)  # error_kind(error) -> count
    resent: int = 0  # calls the client sent once more after their connection was dropped (clients/client/)
    retried: int = 0  # calls sent again after a 503's Retry-After (each counted in errors only if it failed)
    model_versions: dict[str, list[int]] = field(default_factory=dict)  # role -> versions seen (sorted)
    seconds: float = 0.0


def check_pipelines(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in PIPELINES]
    if unknown or not names:
        raise ValueError(f"pipelines must be among {list(PIPELINES)}, got {names}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # each was summarised as another seed of the same seed: a zero-width interval
        raise ValueError(f"pipelines are named once each; {repeated} named more than once in {names}")
    return names


def oracle_scores(world: World, requests: DayRequests) -> DayScores:
    started = time.perf_counter()
    users = requests.user[:, None]
    pctr = world.true_ctr(users, requests.ads, requests.hour[:, None])
    pcvr = world.true_cvr(users, requests.ads)
    return DayScores(pctr=pctr, pcvr=pcvr, seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class BaseRates:
    """The base-rate pipelines' scores (constant, random): a window of logs' clicks per impression and conversions
    per click."""

    ctr: float
    cvr: float

    @classmethod
    def of_counts(cls, impressions: int, clicks: int, conversions: int) -> BaseRates:
        """ValueError where the window has no click (no conversions-per-click rate to score by)."""
        if clicks == 0:
            raise ValueError(
                f"no click among the {counted(impressions, 'impression')} of its window: no conversion rate"
            )
        return cls(ctr=clicks / impressions, cvr=conversions / clicks)


def constant_scores(requests: DayRequests, rates: BaseRates) -> DayScores:
    """A base-rate pipeline's day (constant, random): ``rates``' pCTR and pCVR for every candidate of every request."""
    started = time.perf_counter()
    shape = requests.ads.shape
    pctr, pcvr = np.full(shape, rates.ctr), np.full(shape, rates.cvr)
    return DayScores(pctr=pctr, pcvr=pcvr, seconds=time.perf_counter() - started)


async def service_scores(
    client: AsyncScoringClient, world: World, requests: DayRequests, concurrency: int, progress: bool = False
) -> DayScores:
    """Score every request of the day over HTTP, at most ``concurrency`` in flight."""
    bodies = score_bodies(world, requests)
    shape = requests.ads.shape
    scores = DayScores(pctr=np.full(shape, np.nan), pcvr=np.full(shape, np.nan))
    versions: dict[str, set[int]] = {}
    gate = asyncio.Semaphore(concurrency)
    bar = _progress(len(bodies), f"day {requests.day}", progress)

    async def one(index: int, body: dict) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                reply = await client.score(body["context"], body["candidates"])
            except (ServiceError, httpx.HTTPError) as error:
                key = error_kind(error)
                scores.errors += 1
                scores.error_kinds[key] = scores.error_kinds.get(key, 0) + 1
                if scores.errors <= WARNED_FAILURES:
                    logger.warning("request %d of day %d failed: %s", index, requests.day, key)
                return
            finally:
                scores.latencies_ms.append(1000.0 * (time.perf_counter() - started))
                if bar is not None:
                    bar.update(1)
            scores.pctr[index] = [s.pctr for s in reply.scores]
            scores.pcvr[index] = [s.pcvr for s in reply.scores]
            for role, ref in reply.models.items():
                versions.setdefault(role, set()).add(ref.version)

    started, resent, retried = time.perf_counter(), client.resent, client.retried
    await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    scores.seconds = time.perf_counter() - started
    scores.resent, scores.retried = client.resent - resent, client.retried - retried
    if bar is not None:
        bar.close()
    if scores.errors > WARNED_FAILURES:
        logger.warning(
            "day %d: %d more requests failed (%d of %d in all, by kind in the report's error_kinds)",
            requests.day, scores.errors - WARNED_FAILURES, scores.errors, len(bodies),
        )  # fmt: skip
    scores.model_versions = {role: sorted(v) for role, v in versions.items()}
    return scores


def error_kind(error: ServiceError | httpx.HTTPError) -> str:
    """A failed call's kind: its status and message with every number as N (a 504 names how many ms late
    it was: one cause gave 12 kinds), or the transport error's class."""
    if isinstance(error, ServiceError):
        return f"{error.status}: {NUMBER.sub('N', error.error)}"
    return type(error).__name__


def _progress(total: int, label: str, enabled: bool):  # -> tqdm | None
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="req", leave=False)


def write_model_configs(
    repository: Path, pipeline: str, source: Path, roles: dict[str, str], batch_size: int
) -> dict[str, str]:
    """Write the pipeline's model configs (``model_configs``) into its own repository. Returns role -> model name."""
    configs = model_configs(pipeline, source, roles, batch_size)
    for name, text in dict(configs.values()).items():
        (repository / name).mkdir(parents=True, exist_ok=True)
        (repository / name / "config.toml").write_text(text, encoding="utf-8")
    return {role: name for role, (name, _) in configs.items()}


def model_configs(pipeline: str, source: Path, roles: dict[str, str], batch_size: int) -> dict[str, tuple[str, str]]:
    """Role -> (model name, config.toml text) of the pipeline's models: the project's committed configs
    with ``[training] batch_size`` sized to the retraining window (the committed 2048 is sized for
    ~1M-row training sets: a window of ~10k rows would get a handful of Adam steps and leave ESMM's
    CVR tower near its initial 0.5), and the naive pipeline's CTR model reduced to a position-blind
    click model."""
    names = dict(roles)
    configs = dict(roles)  # role -> the committed config it starts from
    if pipeline == "naive":
        names["ctr"] = NAIVE_CTR_MODEL
        names["ctcvr"] = configs["ctcvr"] = NAIVE_CTCVR_MODEL
    out = {}
    for role, name in names.items():
        committed = source / configs[role] / "config.toml"
        if not committed.is_file():
            raise FileNotFoundError(
                f"no {committed}: the {pipeline} pipeline's {role} model starts from it; run from the repository "
                "root or pass --configs PATH/models"
            )
        text = with_overrides(committed.read_text(encoding="utf-8"), "training", {"batch_size": batch_size})
        if pipeline == "naive" and role == "ctr":
            text = with_overrides(text, "model", NAIVE_CTR_OVERRIDES)
        out[role] = (name, text)
    return out
