"""The advertisers of the auction: two kinds, bidding per click.

- **CPC**: values a click at ``value`` and bids it per click, whatever the model says about conversions.
- **oCPA**: values a conversion at ``value`` (its target CPA) and bids ``value x pCVR`` per click, so its
  eCPM is ``value x pCTR x pCVR``: a mis-calibrated pCVR misprices it directly.

Each of the world's advertisers is one kind (drawn once per seed); its ads share the kind. A conversion
is worth about the ad's price (``ad_price``, the world's product price) times a lognormal spread; a
CPC advertiser values a click at the conversion value times the ad's mean true CVR over a sample of
users (what a click is worth to it on average), with its own lognormal spread. Both kinds' values
per click are therefore on the same scale, and neither kind wins by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.world import World

VALUE_USERS = 1000  # users sampled to estimate each ad's mean true CVR (the CPC value per click)
# users whose true CVRs of every ad are computed at once: all of the default world's 1000 users x 5000 ads x 8
# latent dimensions x 8 bytes gathered 320 MB for each of the three latent operands, a gigabyte written and read
# for one mean at every seed's start; 50 users gather 16 MB each
VALUE_USERS_PER_PASS = 50


@dataclass(frozen=True)
class Advertisers:
    ocpa: np.ndarray  # (A,) bool per ad: True for oCPA advertisers' ads, False for CPC
    value: np.ndarray  # (A,) float64: CPC value (and bid) per click; oCPA value of a conversion (target CPA)

    @classmethod
    def draw(
        cls, world: World, rng: np.random.Generator, ocpa_share: float = 0.5, value_sigma: float = 0.3
    ) -> Advertisers:
        """Kinds per advertiser and values per ad, from the world's ads and ``rng``."""
        if not 0.0 <= ocpa_share <= 1.0:
            raise ValueError(f"ocpa_share must lie in [0, 1], not {ocpa_share}")
        population = world.population
        n_ads = population.n_ads
        advertiser_ocpa = rng.random(world.config.n_advertisers) < ocpa_share
        ocpa = advertiser_ocpa[population.ad_advertiser]
        conversion_value = population.ad_price.astype(np.float64) * rng.lognormal(0.0, value_sigma, n_ads)
        users = rng.choice(population.n_users, size=min(VALUE_USERS, population.n_users), replace=False)
        mean_cvr = true_cvrs_by_user(world, users).mean(axis=0)  # (A,)
        click_value = conversion_value * mean_cvr * rng.lognormal(0.0, value_sigma, n_ads)
        return cls(ocpa=ocpa, value=np.where(ocpa, conversion_value, click_value))

    def bid_per_click(self, ads: np.ndarray, pcvr: np.ndarray) -> np.ndarray:
        """(R, K) bids per click of the candidate ads given the model's pCVR of each."""
        return np.where(self.ocpa[ads], self.value[ads] * pcvr, self.value[ads])

    def value_per_click(self, ads: np.ndarray, true_cvr: np.ndarray) -> np.ndarray:
        """(R, K) what a click on each ad is truly worth to its advertiser (expected, for oCPA)."""
        return self.bid_per_click(ads, true_cvr)

    def realised_value(self, ads: np.ndarray, clicks: np.ndarray, conversions: np.ndarray) -> np.ndarray:
        """Value of what happened: CPC ads are worth their clicks, oCPA ads their conversions."""
        return np.where(self.ocpa[ads], self.value[ads] * conversions, self.value[ads] * clicks)


def true_cvrs_by_user(world: World, users: np.ndarray) -> np.ndarray:
    """(U, A) true CVR of each of ``users`` for every ad, ``VALUE_USERS_PER_PASS`` users at a time: the same
    values as one pass (each is its own user's and ad's), without its gigabyte of gathered latent rows."""
    ads = np.arange(world.population.n_ads)[None, :]
    passes = range(0, len(users), VALUE_USERS_PER_PASS)
    return np.concatenate([world.true_cvr(users[i : i + VALUE_USERS_PER_PASS, None], ads) for i in passes])
