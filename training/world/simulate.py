"""The day loop: draw requests, rank their candidates with the logging policy, display the top
slots, draw clicks through the examination model and conversion potentials for every impression.

Each day's randomness comes from its own streams, keyed by (world seed, simulation seed, day):
one for the requests, one for the policy, one for the outcomes. The requests of a day are therefore
the same whatever the policy, so two policies can be compared on identical traffic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from training.world.config import WorldConfig
from training.world.logs import build_table, candidate_table, request_ids
from training.world.policy import FeedbackModel, check_policy, display, score_candidates, uniform_propensity
from training.world.population import Population, Vocabulary
from training.world.traffic import SECONDS_PER_DAY, Requests, sample_requests
from training.world.truth import examination, true_ctr, true_cvr

logger = logging.getLogger(__name__)

SIMULATION_STREAM = 1  # distinguishes simulate()'s seed sequence from the population's and requests'


def _day_streams(config: WorldConfig, seed: int, day: int) -> list[np.random.Generator]:
    sequence = np.random.SeedSequence([config.seed, SIMULATION_STREAM, seed, day])
    return [np.random.default_rng(s) for s in sequence.spawn(3)]


@dataclass(frozen=True)
class SimulatedDay:
    displayed: pa.Table  # the day's impression log
    non_displayed: pa.Table | None  # its requests' candidates the policy did not display (asked for), else None


def iter_simulated_days(
    population: Population,
    vocab: Vocabulary,
    config: WorldConfig,
    days: int,
    requests_per_day: int,
    policy: str,
    seed: int,
    start_day: int = 0,
    non_displayed: bool = False,
) -> Iterator[SimulatedDay]:
    """Each simulated day in turn, the feedback policy learning from one day to the next; one day in memory at a
    time, so a long run can be written out day by day (training/world/shards.py). Each holds its impression log
    and (``non_displayed``) the table of its requests' candidates that were not displayed (``candidate_table``:
    what a retrieval model's ``--non-displayed`` reads); the same draws, so the displayed logs are the same
    whether it is asked for or not."""
    check_policy(policy)
    if days < 1 or requests_per_day < 1:
        raise ValueError(f"days and requests_per_day must be >= 1, got {days} and {requests_per_day}")
    if seed < 0 or start_day < 0:
        raise ValueError(f"seed and start_day must be non-negative, got {seed} and {start_day}")
    n_slots = config.n_slots
    theta = examination(config)  # (S,)
    model = FeedbackModel(population.n_ads, config.feedback_prior_strength) if policy == "feedback" else None
    for day in range(start_day, start_day + days):
        started = time.perf_counter()
        request_rng, policy_rng, outcome_rng = _day_streams(config, seed, day)
        requests = sample_requests(request_rng, population, config, requests_per_day, config.n_candidates)
        scores = score_candidates(
            policy, requests.candidates, policy_rng, population.ad_popularity, config, model
        )  # (R, K)
        slots = display(scores, n_slots)  # (R, S)
        ads = np.take_along_axis(requests.candidates, slots, axis=1)  # (R, S)
        users = requests.user[:, None]  # (R, 1)
        ctr = true_ctr(population, config, users, ads, requests.hour[:, None])  # (R, S)
        cvr = true_cvr(population, config, users, ads)  # (R, S)
        click = outcome_rng.random(ads.shape) < theta * ctr  # (R, S)
        potential = outcome_rng.random(ads.shape) < cvr  # (R, S)
        if model is not None:
            model.fit(ads, click)  # tomorrow's ranking model learns from today's logs
        columns = {
            "ts": np.repeat(config.start_ts + day * SECONDS_PER_DAY + requests.second, n_slots),
            "user": np.repeat(requests.user, n_slots),
            "hour": np.repeat(requests.hour, n_slots),
            "ad": ads.ravel(),
            "position": np.tile(np.arange(1, n_slots + 1), requests_per_day),
            "click": click.ravel(),
            "conversion": (click & potential).ravel(),
            "conversion_potential": potential.ravel(),
            "true_ctr": ctr.ravel(),
            "true_cvr": cvr.ravel(),
            "examination": np.tile(theta, requests_per_day),
        }
        if policy == "uniform":
            columns["propensity"] = np.full(click.size, uniform_propensity(config), dtype=np.float32)
        logger.info(
            "day %d (%s): %d impressions, CTR %.4f, %.2fs",
            day,
            policy,
            click.size,
            click.mean(),
            time.perf_counter() - started,
        )
        displayed = build_table(columns, request_ids(day, requests_per_day, n_slots), population, vocab)
        hidden = None
        if non_displayed:
            hidden = _not_displayed(population, vocab, config, day, requests, slots)
        yield SimulatedDay(displayed, hidden)


def _not_displayed(
    population: Population,
    vocab: Vocabulary,
    config: WorldConfig,
    day: int,
    requests: Requests,
    slots: np.ndarray,
) -> pa.Table:
    """The candidates (R, K) of the day's ``requests`` outside their displayed columns ``slots`` (R, S), request by
    request in draw order, with the request ids of the displayed log."""
    hidden = np.ones(requests.candidates.shape, dtype=bool)
    np.put_along_axis(hidden, slots, False, axis=1)
    rows, cols = np.nonzero(hidden)
    ads = requests.candidates[rows, cols]
    users, hours = requests.user[rows], requests.hour[rows]
    ids = request_ids(day, len(requests), 1).take(pa.array(rows))
    return candidate_table(
        {
            "ts": config.start_ts + day * SECONDS_PER_DAY + requests.second[rows],
            "user": users,
            "hour": hours,
            "ad": ads,
            "true_ctr": true_ctr(population, config, users, ads, hours),
            "true_cvr": true_cvr(population, config, users, ads),
        },
        ids,
        population,
        vocab,
    )
