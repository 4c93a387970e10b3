"""A day of auction requests from the world: who asks, when, and which candidates are eligible.

Candidates are the world's eligible pool for the request (``n_candidates`` distinct ads drawn by
Zipf popularity), unless a retriever takes them from a larger pool (clients/auction/retrieval.py). The draws of
a day depend only on (seed, day), so every pipeline of a seed sees identical traffic, and the uniform
numbers that decide clicks and conversions are drawn per (request, candidate) the same way, so an ad
shown in the same slot of the same request has the same outcome in every pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.world import DEVICES, World
from training.world.traffic import SECONDS_PER_DAY, sample_requests

AUCTION_STREAM = 16  # keys the auction's seed sequence apart from the world's own streams


@dataclass(frozen=True)
class DayRequests:
    day: int
    user: np.ndarray  # (R,) user index
    hour: np.ndarray  # (R,) hour of the day
    ts: np.ndarray  # (R,) unix seconds
    ads: np.ndarray  # (R, K) candidate ad indices
    click_draw: np.ndarray  # (R, K) uniform numbers: a click at slot k when < theta_k x true CTR
    conversion_draw: np.ndarray  # (R, K) uniform numbers: a conversion after a click when < true CVR

    def __len__(self) -> int:
        return len(self.user)


def draw_day(
    world: World, seed: int, day: int, n_requests: int, calendar_offset: int = 0, n_candidates: int | None = None
) -> DayRequests:
    """The requests of ``day`` for ``seed``: identical for every pipeline. Their timestamps fall on
    calendar day ``calendar_offset + day`` (after the history days the models first train on). ``n_candidates``:
    ads drawn per request, the world's ``n_candidates`` unless given (a retriever's pool: retrieval.py)."""
    request_rng, outcome_rng = (
        np.random.default_rng(s)
        for s in np.random.SeedSequence([world.config.seed, AUCTION_STREAM, seed, day]).spawn(2)
    )
    drawn = world.config.n_candidates if n_candidates is None else n_candidates
    requests = sample_requests(request_rng, world.population, world.config, n_requests, drawn)
    shape = requests.candidates.shape
    return DayRequests(
        day=day,
        user=requests.user,
        hour=requests.hour,
        ts=world.config.start_ts + (calendar_offset + day) * SECONDS_PER_DAY + requests.second,
        ads=requests.candidates,
        click_draw=outcome_rng.random(shape),
        conversion_draw=outcome_rng.random(shape),
    )


def score_bodies(world: World, requests: DayRequests) -> list[dict[str, Any]]:
    """One ``/v1/score`` body per request, with the world's feature names and JSON-native values."""
    p = world.population
    ad_features = {
        int(ad): {
            "ad_id": f"a{ad}",
            "ad_category": f"c{int(p.ad_category[ad])}",
            "advertiser_id": f"adv{int(p.ad_advertiser[ad])}",
            "ad_price": float(p.ad_price[ad]),
            "ad_quality": float(p.ad_quality[ad]),
        }
        for ad in np.unique(requests.ads).tolist()
    }
    bodies = []
    for user, hour, ads in zip(requests.user.tolist(), requests.hour.tolist(), requests.ads.tolist(), strict=True):
        context = {
            "user_id": f"u{user}",
            "user_segment": f"s{int(p.user_segment[user])}",
            "device": DEVICES[int(p.user_device[user])],
            "hour": str(hour),
            "user_age": float(p.user_age[user]),
        }
        bodies.append({"context": context, "candidates": [ad_features[ad] for ad in ads]})
    return bodies
