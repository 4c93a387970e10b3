"""Configuration of the simulated ad marketplace: its size, its true click and conversion model,
the display and examination model, and the logging policies (DESIGN.md, "The world simulator").

The defaults are tuned so that the mean true CTR of displayed ads is 0.07-0.09 (about 0.10 at
position 1 under the feedback policy), the mean true CVR about 0.12, the correlation of true CTR and
true CVR over displayed pairs about 0.5, and clicked impressions have a clearly higher true CVR
(about 0.18) than unclicked ones (about 0.12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

POLICIES = ("feedback", "popularity", "uniform")
DEVICES = ("mobile", "desktop", "tablet")


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0  # every random draw of the population, and of simulate() unless it is given a seed

    # -- population ---------------------------------------------------------------------------
    n_users: int = 20_000  # users "u0".."u{n-1}"
    n_ads: int = 5_000  # ads "a0".."a{n-1}"
    latent_dim: int = 8  # dimension of the user and ad latent vectors
    n_segments: int = 16  # user segments "s0".., each a cluster of the user latent space
    segment_share: float = 0.6  # share of a user latent's variance explained by its segment centre
    device_probs: tuple[float, ...] = (0.6, 0.3, 0.1)  # P(mobile), P(desktop), P(tablet)
    age_range: tuple[float, float] = (18.0, 70.0)  # user_age is uniform on this range (years)
    user_activity_sigma: float = 0.5  # lognormal spread of users' request rates (0: uniform users)
    n_categories: int = 30  # ad categories "c0"..; each has a latent centroid
    n_advertisers: int = 500  # advertisers "adv0"..; each sells in one category
    category_share: float = 0.45  # share of an ad latent's variance from its category centroid
    advertiser_share: float = 0.3  # share from its advertiser's offset; the rest is the ad's own noise
    zipf_a: float = 1.1  # exponent of the Zipf popularity over ads (candidate sampling weights)
    popularity_bias_corr: float = 0.4  # correlation of an ad's popularity rank key with its click bias
    price_log_mean: float = 3.0  # ad_price = exp(N(price_log_mean + category shift, sigma)): ~20 median
    price_log_sigma: float = 0.7  # spread of log price within a category
    price_category_sigma: float = 0.5  # spread of the categories' mean log price

    # -- true click model: logit = base + alpha * u.v + ad bias + hour + device ---------------
    base_ctr_logit: float = -3.6  # intercept of the click logit
    alpha: float = 1.0  # weight of the user-ad affinity u.v (u.v has variance about 1)
    ad_bias_sigma: float = 0.6  # spread of the ads' own click bias (half of it from the advertiser)
    quality_noise: float = 0.35  # noise between an ad's click bias and its observed ad_quality
    hour_amplitude: float = 0.15  # the hour moves the click logit by +-this over the day
    peak_hour: int = 20  # hour of peak traffic and peak click propensity
    device_ctr_logit: tuple[float, ...] = (0.1, 0.0, -0.1)  # click logit shift per device

    # -- true conversion model: logit = base + beta * u.w + rho * u.v - gamma * price + ... -----
    base_cvr_logit: float = -2.4  # intercept of the conversion logit
    beta: float = 0.8  # weight of the user-ad conversion affinity u.w (w: a second ad vector)
    rho: float = 0.7  # weight of the click affinity u.v: ties CVR to CTR, so clicked != unclicked
    gamma: float = 0.4  # weight of the ad's standardised log price (expensive ads convert less)
    age_cvr: float = 0.15  # weight of the user's standardised age
    device_cvr_logit: tuple[float, ...] = (-0.1, 0.2, 0.0)  # conversion logit shift per device

    # -- display ----------------------------------------------------------------------------------
    n_candidates: int = 20  # distinct ads drawn by popularity per request, then ranked
    n_slots: int = 5  # the top n_slots of the ranking are displayed, positions 1..n_slots
    eta: float = 1.0  # examination probability of slot k is (1/k)^eta

    # -- logging policies ---------------------------------------------------------------------
    popularity_noise: float = 1.0  # sigma of the lognormal noise on popularity scores
    feedback_noise: float = 0.3  # sigma of the lognormal noise on the feedback model's CTR estimate
    feedback_prior_strength: float = 50.0  # pseudo-impressions of the Beta prior of the CTR estimate

    # -- time -----------------------------------------------------------------------------------
    start_ts: int = 1_704_067_200  # unix seconds of day 0, 00:00 (2024-01-01 UTC)
    diurnal_amplitude: float = 0.5  # traffic by hour is proportional to 1 + a * cos(hour - peak)

    def __post_init__(self) -> None:
        for name in (
            "n_users",
            "n_ads",
            "latent_dim",
            "n_segments",
            "n_categories",
            "n_advertisers",
            "n_candidates",
            "n_slots",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        if not self.n_slots <= self.n_candidates <= self.n_ads:
            raise ValueError(
                f"need n_slots <= n_candidates <= n_ads, got {self.n_slots}, {self.n_candidates}, {self.n_ads}"
            )
        if self.n_advertisers < self.n_categories:
            raise ValueError("n_advertisers must be >= n_categories (every category needs an advertiser)")
        if not (0 <= self.segment_share <= 1):
            raise ValueError(f"segment_share must lie in [0, 1], got {self.segment_share}")
        if self.category_share < 0 or self.advertiser_share < 0 or self.category_share + self.advertiser_share > 1:
            raise ValueError("category_share and advertiser_share must be >= 0 and sum to at most 1")
        for name, n in (
            ("device_probs", len(DEVICES)),
            ("device_ctr_logit", len(DEVICES)),
            ("device_cvr_logit", len(DEVICES)),
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one value per device {DEVICES}")
        if min(self.device_probs) < 0 or not math.isclose(sum(self.device_probs), 1.0, abs_tol=1e-6):
            raise ValueError(f"device_probs must be non-negative and sum to 1, got {self.device_probs}")
        if not self.age_range[0] < self.age_range[1]:
            raise ValueError(f"age_range must be (low, high) with low < high, got {self.age_range}")
        if not -1 <= self.popularity_bias_corr <= 1:
            raise ValueError(f"popularity_bias_corr must lie in [-1, 1], got {self.popularity_bias_corr}")
        if self.zipf_a < 0 or self.eta < 0:
            raise ValueError("zipf_a and eta must be >= 0")
        if not 0 <= self.peak_hour < 24:
            raise ValueError(f"peak_hour must be in 0..23, got {self.peak_hour}")
        if not 0 <= self.diurnal_amplitude < 1:
            raise ValueError(f"diurnal_amplitude must be in [0, 1), got {self.diurnal_amplitude}")
        if self.feedback_prior_strength <= 0:
            raise ValueError("feedback_prior_strength must be > 0")
