"""The feature spec of the world's logs: the ten feature columns, their kinds, sides and buckets.

Ids get about twice as many hash buckets as the world has values, small vocabularies about four
times as many, so that hash collisions are rare. Ids, category and price are required; the
segment, device, hour, age and quality of a request or ad are optional, with a default.
"""

from __future__ import annotations

import math

from common.features import Feature, FeatureSpec
from training.world.config import DEVICES, WorldConfig

CANDIDATE_FEATURES = ("ad_id", "ad_category", "advertiser_id", "ad_price", "ad_quality")


def _buckets(n_values: int, factor: int) -> int:
    """``factor`` buckets per value, rounded up to a multiple of 8."""
    return 8 * math.ceil(factor * n_values / 8)


def feature_spec(config: WorldConfig | None = None) -> FeatureSpec:
    """The (unfitted) spec of the ten feature columns the world writes."""
    c = config or WorldConfig()
    low, high = c.age_range
    return FeatureSpec(
        (
            Feature("user_id", "categorical", "context", buckets=_buckets(c.n_users, 2)),
            Feature("user_segment", "categorical", "context", buckets=_buckets(c.n_segments, 4), required=False),
            Feature("device", "categorical", "context", buckets=_buckets(len(DEVICES), 4), required=False),
            Feature("hour", "categorical", "context", buckets=_buckets(24, 4), required=False),
            Feature("user_age", "numeric", "context", required=False, default=(low + high) / 2),
            Feature("ad_id", "categorical", "candidate", buckets=_buckets(c.n_ads, 2)),
            Feature("ad_category", "categorical", "candidate", buckets=_buckets(c.n_categories, 4)),
            Feature("advertiser_id", "categorical", "candidate", buckets=_buckets(c.n_advertisers, 2)),
            Feature("ad_price", "numeric", "candidate"),
            Feature("ad_quality", "numeric", "candidate", required=False, default=0.5),
        )
    )
