"""The simulator's non-displayed candidates (``iter_simulated_days(..., non_displayed=True)``): the rest of each
request's candidates beside its displayed impressions, the displayed logs unchanged by asking for them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from training.world import World, WorldConfig
from training.world.logs import DISPLAY_COLUMNS
from training.world.simulate import _day_streams, iter_simulated_days
from training.world.traffic import sample_requests

CONFIG = WorldConfig(seed=5, n_users=500, n_ads=300, n_slots=3, n_candidates=8)
DAYS, REQUESTS, SEED = 2, 200, 4


def test_each_requests_candidates_are_its_displayed_ads_and_its_non_displayed_ones() -> None:
    world = World(CONFIG)
    days = list(iter_simulated_days(world.population, world.vocab, CONFIG, DAYS, REQUESTS, "feedback", SEED,
                                    non_displayed=True))  # fmt: skip
    # the displayed logs are the ones simulate() writes, asked for the candidates or not
    assert (
        pa.concat_tables([d.displayed for d in days])
        .combine_chunks()
        .equals(world.simulate(days=DAYS, requests_per_day=REQUESTS, seed=SEED))
    )
    assert all(d.non_displayed is None for d in iter_simulated_days(
        world.population, world.vocab, CONFIG, DAYS, REQUESTS, "feedback", SEED))  # fmt: skip
    for number, day in enumerate(days):
        hidden = day.non_displayed
        assert hidden.num_rows == REQUESTS * (CONFIG.n_candidates - CONFIG.n_slots)
        assert not set(DISPLAY_COLUMNS) & set(hidden.column_names)  # no position, click or conversion
        assert set(hidden.column_names) <= set(day.displayed.column_names)
        # the request's drawn candidates (its own stream), split between the two tables, every one once
        drawn = sample_requests(_day_streams(CONFIG, SEED, number)[0], world.population, CONFIG, REQUESTS,
                                CONFIG.n_candidates).candidates  # fmt: skip
        for table in (day.displayed, hidden):
            assert set(table.column("request_id").to_pylist()) == {f"d{number}-r{r}" for r in range(REQUESTS)}
        for r in (0, 57, REQUESTS - 1):
            ads = [t.filter(pa.compute.equal(t.column("request_id"), f"d{number}-r{r}")).column("ad_idx").to_pylist()
                   for t in (day.displayed, hidden)]  # fmt: skip
            assert sorted(ads[0] + ads[1]) == sorted(drawn[r].tolist())
        users = hidden.column("user_idx").to_numpy()
        true_ctr = world.true_ctr(users, hidden.column("ad_idx").to_numpy(), hidden.column("hour").to_numpy()
                                  .astype(np.int64))  # fmt: skip
        assert np.allclose(hidden.column("true_ctr").to_numpy(), true_ctr, rtol=1e-6)  # float32 in the table
