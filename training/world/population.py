"""The users and ads of the world: latent vectors, categorical and numeric attributes, popularity.

Latents are hierarchical so that an id is never the only signal a model can learn from:
a user's latent is its segment centre plus noise; an ad's click latent v is its category centroid
plus its advertiser's offset plus its own noise, and its conversion latent w is built the same way
from separate centroids. User latents are scaled by 1/sqrt(latent_dim) so that u.v has variance
about 1 whatever the dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from training.world.config import DEVICES, WorldConfig


@dataclass(frozen=True)
class Population:
    # users
    user_latent: np.ndarray  # (U, D) float64
    user_segment: np.ndarray  # (U,) int32, index into segment_vocab
    user_device: np.ndarray  # (U,) int32, index into DEVICES
    user_age: np.ndarray  # (U,) float32, years
    user_age_z: np.ndarray  # (U,) float64, standardised age
    user_activity: np.ndarray  # (U,) float64, probability that a request comes from this user
    # ads
    ad_latent: np.ndarray  # (A, D) float64, click latent v
    ad_conv_latent: np.ndarray  # (A, D) float64, conversion latent w
    ad_category: np.ndarray  # (A,) int32
    ad_advertiser: np.ndarray  # (A,) int32
    ad_price: np.ndarray  # (A,) float32
    ad_log_price_z: np.ndarray  # (A,) float64, standardised log price
    ad_bias: np.ndarray  # (A,) float64, the ad's own click logit shift
    ad_quality: np.ndarray  # (A,) float32 in (0, 1), a noisy monotone signal of ad_bias
    ad_popularity: np.ndarray  # (A,) float64, Zipf weights summing to 1

    @property
    def n_users(self) -> int:
        return len(self.user_latent)

    @property
    def n_ads(self) -> int:
        return len(self.ad_latent)


@dataclass(frozen=True)
class Vocabulary:
    """The string value of every categorical index, as pyarrow arrays ready for ``take``."""

    user_id: pa.Array
    user_segment: pa.Array
    device: pa.Array
    hour: pa.Array
    ad_id: pa.Array
    ad_category: pa.Array
    advertiser_id: pa.Array


def _names(prefix: str, n: int) -> pa.Array:
    return pa.array([f"{prefix}{i}" for i in range(n)], pa.string())


def build_vocabulary(config: WorldConfig) -> Vocabulary:
    return Vocabulary(
        user_id=_names("u", config.n_users),
        user_segment=_names("s", config.n_segments),
        device=pa.array(DEVICES, pa.string()),
        hour=_names("", 24),
        ad_id=_names("a", config.n_ads),
        ad_category=_names("c", config.n_categories),
        advertiser_id=_names("adv", config.n_advertisers),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _standardise(x: np.ndarray) -> np.ndarray:
    std = x.std()
    return (x - x.mean()) / (std if std > 0 else 1.0)


def build_population(config: WorldConfig, rng: np.random.Generator) -> Population:
    """Draw every user and ad of the world from ``rng`` (the order of draws is part of the seed)."""
    c = config
    d = c.latent_dim

    # users: segment centre + noise, scaled so that u.v ~ variance 1
    segment_centres = rng.normal(0.0, np.sqrt(c.segment_share), (c.n_segments, d))
    segment_weights = rng.dirichlet(np.full(c.n_segments, 5.0))
    user_segment = rng.choice(c.n_segments, size=c.n_users, p=segment_weights)
    user_noise = rng.normal(0.0, np.sqrt(1.0 - c.segment_share), (c.n_users, d))
    user_latent = (segment_centres[user_segment] + user_noise) / np.sqrt(d)
    user_device = rng.choice(len(DEVICES), size=c.n_users, p=np.asarray(c.device_probs) / sum(c.device_probs))
    low, high = c.age_range
    user_age = rng.uniform(low, high, c.n_users)
    activity = rng.lognormal(0.0, c.user_activity_sigma, c.n_users) if c.user_activity_sigma > 0 else None
    user_activity = np.full(c.n_users, 1.0 / c.n_users) if activity is None else activity / activity.sum()

    # advertisers: each sells in one category (every category gets at least one advertiser)
    advertiser_category = rng.permutation(np.arange(c.n_advertisers) % c.n_categories)
    own_share = 1.0 - c.category_share - c.advertiser_share
    category_centroid = rng.normal(0.0, np.sqrt(c.category_share), (c.n_categories, d))
    advertiser_offset = rng.normal(0.0, np.sqrt(c.advertiser_share), (c.n_advertisers, d))
    category_conv_centroid = rng.normal(0.0, np.sqrt(0.5), (c.n_categories, d))
    advertiser_bias = rng.normal(0.0, c.ad_bias_sigma * np.sqrt(0.5), c.n_advertisers)
    category_price_shift = rng.normal(0.0, c.price_category_sigma, c.n_categories)

    # ads: advertiser sizes are skewed (a few large advertisers, many small ones)
    advertiser_weights = rng.dirichlet(np.full(c.n_advertisers, 1.0))
    ad_advertiser = rng.choice(c.n_advertisers, size=c.n_ads, p=advertiser_weights)
    ad_category = advertiser_category[ad_advertiser]
    ad_latent = (
        category_centroid[ad_category]
        + advertiser_offset[ad_advertiser]
        + rng.normal(0.0, np.sqrt(own_share), (c.n_ads, d))
    )
    ad_conv_latent = category_conv_centroid[ad_category] + rng.normal(0.0, np.sqrt(0.5), (c.n_ads, d))
    ad_bias = advertiser_bias[ad_advertiser] + rng.normal(0.0, c.ad_bias_sigma * np.sqrt(0.5), c.n_ads)
    observed_bias = ad_bias + rng.normal(0.0, c.quality_noise, c.n_ads)
    ad_quality = _sigmoid(2.0 * observed_bias / np.hypot(c.ad_bias_sigma, c.quality_noise))
    log_price = c.price_log_mean + category_price_shift[ad_category] + rng.normal(0.0, c.price_log_sigma, c.n_ads)

    # Zipf popularity, weight 1 / rank^a: ads are ranked by a key partly tied to their click bias
    bias_z = _standardise(ad_bias)
    w = c.popularity_bias_corr
    key = w * bias_z + np.sqrt(1.0 - w * w) * rng.normal(0.0, 1.0, c.n_ads)
    rank = np.empty(c.n_ads)
    rank[np.argsort(-key)] = np.arange(1, c.n_ads + 1)
    popularity = rank**-c.zipf_a
    popularity /= popularity.sum()

    return Population(
        user_latent=user_latent,
        user_segment=user_segment.astype(np.int32),
        user_device=user_device.astype(np.int32),
        user_age=user_age.astype(np.float32),
        user_age_z=(user_age - (low + high) / 2) / ((high - low) / np.sqrt(12.0)),
        user_activity=user_activity,
        ad_latent=ad_latent,
        ad_conv_latent=ad_conv_latent,
        ad_category=ad_category.astype(np.int32),
        ad_advertiser=ad_advertiser.astype(np.int32),
        ad_price=np.exp(log_price).astype(np.float32),
        ad_log_price_z=_standardise(log_price),
        ad_bias=ad_bias,
        ad_quality=ad_quality.astype(np.float32),
        ad_popularity=popularity,
    )
