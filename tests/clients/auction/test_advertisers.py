"""The advertisers' values (clients/auction/advertisers.py): each ad's mean true CVR, computed a few users at a
time, is the one pass's value for value."""

from __future__ import annotations

import numpy as np

from clients.auction.advertisers import VALUE_USERS_PER_PASS, true_cvrs_by_user
from training.world import World, WorldConfig


def test_thetrue_cvrs_by_user_computed_a_few_users_at_a_time_are_one_pass_s() -> None:
    world = World(WorldConfig(n_users=500, n_ads=300, n_advertisers=40))
    users = np.random.default_rng(0).choice(500, size=3 * VALUE_USERS_PER_PASS + 7, replace=False)  # a part pass
    whole = world.true_cvr(users[:, None], np.arange(300)[None, :])
    assert np.array_equal(true_cvrs_by_user(world, users), whole)
