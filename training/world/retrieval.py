"""The world's retrieval view: queries, an exposure policy, non-displayed items, true relevance.

ESAM (Chen et al. 2020) learns from queries and the items a previous system displayed for them (the
source domain, with click labels) while most of the catalog, the long tail, is never displayed (the
target domain, no labels). This view builds that setting on the world's users and ads:

- a **query** is a user with an intent category (drawn with probability softmax(sharpness * u . m_c)
  over the category means m_c of the ads' latents); its latent is
  z = (1 - w) * u / |u| + w * m_c / |m_c|, w = ``intent_weight``;
- its **true relevance** to an item d is sigmoid(base + alpha * z . v_d + bias_weight * b_d), with the
  ad's click latent v_d and click bias b_d: known for every item of the catalog, so retrieval metrics
  are exact;
- the **exposure policy** draws ``n_candidates`` distinct items with weight popularity^power (the
  world's Zipf popularity, sharpened: a popularity-biased candidate generator), ranks them by the
  noisy relevance logit (the previous ranking model) and displays the top ``n_slots``; a displayed
  item at slot k is clicked with probability (1/k)^eta * relevance (the world's examination model);
- **hot** items are the ``hot_fraction`` most popular items of the catalog, the rest is the long tail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from common.features import Feature, FeatureSpec
from training.world.config import DEVICES
from training.world.features import CANDIDATE_FEATURES, feature_spec
from training.world.policy import display
from training.world.traffic import sample_distinct
from training.world.truth import examination, sigmoid
from training.world.world import World

RETRIEVAL_STREAM = 3  # seed sequence key of the retrieval view's draws (world.py uses 0..2)
QUERY_FEATURES = ("user_id", "user_segment", "device", "user_age", "query_category")


@dataclass(frozen=True)
class RetrievalConfig:
    intent_weight: float = 0.6  # share of the query latent from its intent category (the rest: the user)
    intent_sharpness: float = 2.0  # intent ~ softmax(sharpness * u . m_c): users favour nearby categories
    base_logit: float = -3.0  # intercept of the relevance logit
    alpha: float = 2.0  # weight of the query-item affinity z . v (z is unit-length-ish, |v| ~ sqrt(D))
    bias_weight: float = 0.5  # weight of the ad's own click bias
    n_candidates: int = 50  # items the candidate generator draws by popularity per query
    popularity_power: float = 2.0  # it draws with weight popularity^power: the tail is rarely drawn
    n_slots: int = 10  # items displayed per query (positions 1..n_slots)
    policy_noise: float = 1.0  # sigma of the Gaussian noise on the previous ranker's relevance logit
    hot_fraction: float = 0.2  # the most popular fifth of the catalog is "hot", the rest long tail
    n_relevant: int = 100  # a query's relevant set: its n_relevant most relevant catalog items

    def __post_init__(self) -> None:
        if not 0.0 <= self.intent_weight <= 1.0:
            raise ValueError(f"intent_weight must lie in [0, 1], got {self.intent_weight}")
        if not 1 <= self.n_slots <= self.n_candidates:
            raise ValueError(f"need 1 <= n_slots <= n_candidates, got {self.n_slots}, {self.n_candidates}")
        if not 0.0 < self.hot_fraction < 1.0:
            raise ValueError(f"hot_fraction must lie in (0, 1), got {self.hot_fraction}")
        if self.n_relevant < 1 or self.policy_noise < 0 or self.popularity_power < 0:
            raise ValueError("n_relevant must be >= 1, policy_noise and popularity_power >= 0")


@dataclass(frozen=True)
class Queries:
    user: np.ndarray  # (Q,) int64 user index
    intent: np.ndarray  # (Q,) int64 intent category
    latent: np.ndarray  # (Q, D) float64 query latent z

    def __len__(self) -> int:
        return len(self.user)


@dataclass(frozen=True)
class Exposure:
    items: np.ndarray  # (Q, S) int64 displayed items, slot 1 first
    click: np.ndarray  # (Q, S) int8


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _names(prefix: str, index: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, np.asarray(index).astype(str))


class RetrievalView:
    """Queries over the catalog of ``world``'s ads, with their exposure and true relevance."""

    def __init__(self, world: World, config: RetrievalConfig | None = None) -> None:
        self.world = world
        self.config = config or RetrievalConfig()
        if self.config.n_candidates > world.config.n_ads or self.config.n_relevant > world.config.n_ads:
            raise ValueError("n_candidates and n_relevant must not exceed the world's n_ads")
        p = world.population
        counts = np.bincount(p.ad_category, minlength=world.config.n_categories)
        sums = np.zeros((world.config.n_categories, p.ad_latent.shape[1]))
        np.add.at(sums, p.ad_category, p.ad_latent)
        self.category_means = sums / np.maximum(counts, 1)[:, None]  # (C, D)
        n_hot = max(1, round(self.config.hot_fraction * p.n_ads))
        self.hot = np.zeros(p.n_ads, dtype=bool)  # (A,)
        self.hot[np.argsort(-p.ad_popularity, kind="stable")[:n_hot]] = True
        world_config = world.config
        slots = replace(world_config, n_slots=self.config.n_slots, n_candidates=max(self.config.n_slots, 1))
        self.examination = examination(slots)  # (S,)

    @property
    def n_items(self) -> int:
        return self.world.population.n_ads

    def _rng(self, seed: int, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.world.config.seed, RETRIEVAL_STREAM, seed, stream]))

    # -- queries and truth ----------------------------------------------------------------------

    def queries(self, n: int, seed: int) -> Queries:
        """``n`` queries: users drawn by activity, each with an intent category."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        rng = self._rng(seed, 0)
        p = self.world.population
        user = np.searchsorted(np.cumsum(p.user_activity), rng.random(n) * p.user_activity.sum(), side="right")
        user = np.minimum(user, p.n_users - 1)
        u = _unit(p.user_latent[user])  # (Q, D)
        means = _unit(self.category_means)  # (C, D)
        logits = self.config.intent_sharpness * u @ means.T  # (Q, C)
        gumbel = -np.log(-np.log(rng.random(logits.shape)))
        intent = np.argmax(logits + gumbel, axis=1)  # a softmax draw
        w = self.config.intent_weight
        return Queries(user=user, intent=intent, latent=(1.0 - w) * u + w * means[intent])

    def relevance_logit(self, queries: Queries, items: np.ndarray | None = None) -> np.ndarray:
        """(Q, A) true relevance logits over the catalog, or (Q, K) for the given items (Q, K)."""
        p = self.world.population
        c = self.config
        if items is None:
            return c.base_logit + c.alpha * queries.latent @ p.ad_latent.T + c.bias_weight * p.ad_bias[None, :]
        affinity = np.einsum("qd,qkd->qk", queries.latent, p.ad_latent[items])
        return c.base_logit + c.alpha * affinity + c.bias_weight * p.ad_bias[items]

    def relevance(self, queries: Queries, items: np.ndarray | None = None) -> np.ndarray:
        """True probability that each query finds each item relevant (clicks it when examined)."""
        return sigmoid(self.relevance_logit(queries, items))

    def relevant_items(self, queries: Queries) -> np.ndarray:
        """(Q, n_relevant) each query's most relevant catalog items (unordered)."""
        r = self.config.n_relevant
        return np.argpartition(-self.relevance_logit(queries), r - 1, axis=1)[:, :r]

    # -- the logging side -----------------------------------------------------------------------

    def expose(self, queries: Queries, seed: int) -> Exposure:
        """What the previous system displayed for each query, and what was clicked."""
        rng = self._rng(seed, 1)
        c = self.config
        weights = self.world.population.ad_popularity**c.popularity_power
        candidates = sample_distinct(rng, weights / weights.sum(), len(queries), c.n_candidates)
        ranking = self.relevance_logit(queries, candidates) + rng.normal(0.0, c.policy_noise, candidates.shape)
        items = np.take_along_axis(candidates, display(ranking, c.n_slots), axis=1)  # (Q, S)
        click = rng.random(items.shape) < self.examination * self.relevance(queries, items)
        return Exposure(items=items, click=click.astype(np.int8))

    def sample_non_displayed(self, displayed: np.ndarray, shape: tuple[int, ...], seed: int) -> np.ndarray:
        """Items drawn uniformly from those never displayed (``displayed``: (A,) bool), shaped ``shape``."""
        pool = np.flatnonzero(~displayed)
        if pool.size == 0:
            raise ValueError("every catalog item was displayed: there is no non-displayed item to sample")
        return pool[self._rng(seed, 2).integers(0, pool.size, shape)]

    # -- features -------------------------------------------------------------------------------

    def feature_spec(self) -> FeatureSpec:
        """Query features (side context) and the world's ad features (side candidate)."""
        base = feature_spec(self.world.config).by_name
        intent = Feature("query_category", "categorical", "context", buckets=base["ad_category"].buckets)
        query = [base.get(name, intent) for name in QUERY_FEATURES]
        return FeatureSpec((*query, *(base[name] for name in CANDIDATE_FEATURES)))

    def query_columns(self, queries: Queries) -> dict[str, np.ndarray]:
        p = self.world.population
        return {
            "user_id": _names("u", queries.user),
            "user_segment": _names("s", p.user_segment[queries.user]),
            "device": np.asarray(DEVICES)[p.user_device[queries.user]],
            "user_age": p.user_age[queries.user].astype(np.float64),
            "query_category": _names("c", queries.intent),
        }

    def item_columns(self, items: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Raw item features of ``items`` (any shape, flattened), or of the whole catalog."""
        p = self.world.population
        index = np.arange(self.n_items) if items is None else np.asarray(items).reshape(-1)
        return {
            "ad_id": _names("a", index),
            "ad_category": _names("c", p.ad_category[index]),
            "advertiser_id": _names("adv", p.ad_advertiser[index]),
            "ad_price": p.ad_price[index].astype(np.float64),
            "ad_quality": p.ad_quality[index].astype(np.float64),
        }
