"""The World: one seeded ad marketplace that serves logs, score requests and true probabilities.

world = World(WorldConfig(seed=0))
logs = world.simulate(days=3, requests_per_day=50_000, policy="feedback")
body = world.sample_request(n_candidates=10, seed=0)
world.true_ctr(logs["user_idx"], logs["ad_idx"])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from training.world import truth
from training.world.config import DEVICES, WorldConfig
from training.world.population import Population, Vocabulary, build_population, build_vocabulary
from training.world.simulate import iter_simulated_days
from training.world.traffic import sample_requests

POPULATION_STREAM = 0  # seed sequence keys: population, simulate (see simulate.py), sample_request
REQUEST_STREAM = 2

IndexLike = npt.ArrayLike  # an int, a sequence of ints, a numpy array or a pyarrow integer array


def _indices(values: IndexLike, n: int, what: str) -> np.ndarray:
    index = np.asarray(values.to_numpy() if isinstance(values, pa.ChunkedArray | pa.Array) else values)
    if not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"{what} indices must be integers, got dtype {index.dtype}")
    if index.size and (index.min() < 0 or index.max() >= n):
        raise ValueError(f"{what} indices must lie in [0, {n}), got {index.min()}..{index.max()}")
    return index


class World:
    """A simulated ad marketplace. Everything it draws comes from ``config.seed`` (and the seeds
    given to its methods): the same seeds always give the same population, logs and requests."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, POPULATION_STREAM]))
        self.population: Population = build_population(self.config, rng)
        self.vocab: Vocabulary = build_vocabulary(self.config)

    def __repr__(self) -> str:
        c = self.config
        return f"World(seed={c.seed}, n_users={c.n_users}, n_ads={c.n_ads}, n_slots={c.n_slots})"

    # -- logs ---------------------------------------------------------------------------------

    def simulate(
        self,
        days: int = 1,
        requests_per_day: int = 10_000,
        policy: str = "feedback",
        seed: int | None = None,
        start_day: int = 0,
    ) -> pa.Table:
        """Impression logs of ``days`` days (``requests_per_day * n_slots`` rows a day) under a
        logging policy in {"feedback", "popularity", "uniform"}. ``seed`` defaults to the config's;
        ``start_day`` numbers the days (in ``ts`` and ``request_id``) to continue an earlier run."""
        seed = self.config.seed if seed is None else seed
        simulated = iter_simulated_days(
            self.population, self.vocab, self.config, days, requests_per_day, policy, seed, start_day
        )
        return pa.concat_tables([day.displayed for day in simulated]).combine_chunks()

    # -- requests -----------------------------------------------------------------------------

    def sample_request(self, n_candidates: int = 10, seed: int = 0) -> dict[str, Any]:
        """A score request body drawn like real traffic: {"context": {...}, "candidates": [{...}]},
        with JSON-native values and the feature names of ``feature_spec()``."""
        if not 1 <= n_candidates <= self.config.n_ads:
            raise ValueError(f"n_candidates must be in 1..{self.config.n_ads}, got {n_candidates}")
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, REQUEST_STREAM, seed]))
        request = sample_requests(rng, self.population, self.config, 1, n_candidates)
        p = self.population
        user = int(request.user[0])
        context = {
            "user_id": f"u{user}",
            "user_segment": f"s{int(p.user_segment[user])}",
            "device": DEVICES[int(p.user_device[user])],
            "hour": str(int(request.hour[0])),
            "user_age": float(p.user_age[user]),
        }
        candidates = [
            {
                "ad_id": f"a{ad}",
                "ad_category": f"c{int(p.ad_category[ad])}",
                "advertiser_id": f"adv{int(p.ad_advertiser[ad])}",
                "ad_price": float(p.ad_price[ad]),
                "ad_quality": float(p.ad_quality[ad]),
            }
            for ad in request.candidates[0].tolist()
        ]
        return {"context": context, "candidates": candidates}

    # -- ground truth ---------------------------------------------------------------------------

    def true_ctr(self, user_idx: IndexLike, ad_idx: IndexLike, hour: IndexLike | None = None) -> np.ndarray:
        """Position-free click probability of each (user, ad[, hour]); the arrays broadcast.
        Without ``hour`` the hour effect is left out (it averages to zero over a day's hours)."""
        users = _indices(user_idx, self.config.n_users, "user")
        ads = _indices(ad_idx, self.config.n_ads, "ad")
        hours = None if hour is None else _hours(hour)
        return truth.true_ctr(self.population, self.config, users, ads, hours)

    def true_cvr(self, user_idx: IndexLike, ad_idx: IndexLike) -> np.ndarray:
        """Post-click conversion probability of each (user, ad); it does not depend on position."""
        users = _indices(user_idx, self.config.n_users, "user")
        ads = _indices(ad_idx, self.config.n_ads, "ad")
        return truth.true_cvr(self.population, self.config, users, ads)

    def examination(self) -> np.ndarray:
        """(n_slots,) examination probability (1/k)^eta of positions k = 1..n_slots."""
        return truth.examination(self.config)


def _hours(hour: IndexLike) -> np.ndarray:
    """Hours as integers 0..23, accepting ints or the log's strings ("0".."23")."""
    values = np.asarray(hour.to_numpy(zero_copy_only=False) if isinstance(hour, pa.ChunkedArray | pa.Array) else hour)
    hours = values.astype(np.int64)
    if hours.size and (hours.min() < 0 or hours.max() > 23):
        raise ValueError("hour must lie in 0..23")
    return hours
