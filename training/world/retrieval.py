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

Two worlds (``RetrievalConfig.world``), sharing queries, exposure and the click-given-relevance rule:

- ``"attributes"`` (the default): an item's relevance is carried by attributes the item tower sees,
  as in ESAM's brand/price/material example. The ad's click latent is split into its category part
  (the mean latent of the category's ads), its brand part (its advertiser's mean residual) and its
  own part; the item publishes a small **content vector** (a random ``content_dim``-dimensional
  projection of its own part, plus noise) and a **price band** (log-price quantile). Its relevance
  latent is v' = category + brand + (the own part visible in the content) + ``id_share`` * (the
  rest), and each user segment has a price sensitivity s_g: the logit gains
  ``price_weight`` * s_g * (standardised log price). ``ad_id`` is hashed into ``id_buckets`` buckets,
  so no item is recognisable by an id embedding that training never touched.
- ``"ids"``: the world before it (the negative control, docs/esam.md): relevance from the full click
  latent, whose own part only ``ad_id`` (two buckets per ad) can learn; no content, no price band.
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
ATTRIBUTE_STREAM = 4  # seed sequence key of the attribute world's fixed draws (projection, sensitivities)
QUERY_FEATURES = ("user_id", "user_segment", "device", "user_age", "query_category")
WORLDS = ("attributes", "ids")


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
    # -- which world: "attributes" (the default) or "ids" (the id-dominated negative control) ----
    world: str = "attributes"
    content_dim: int = 4  # attributes: size of the item's content vector (the latent has 8 dims)
    content_noise: float = 0.1  # attributes: sigma of the noise on the content vector
    id_share: float = 0.0  # attributes: weight of the own latent part the content does not show
    price_bands: int = 8  # attributes: log-price quantile bands (the categorical ad_price_band)
    price_weight: float = 0.5  # attributes: weight of a segment's price sensitivity x log price
    id_buckets: int = 64  # attributes: ad_id hashed into this few buckets (the ids world: 2 per ad)

    @classmethod
    def id_dominated(cls, **overrides: object) -> RetrievalConfig:
        """The world before the attribute world: the documented negative control."""
        return cls(world="ids", **overrides)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.world not in WORLDS:
            raise ValueError(f"world must be one of {WORLDS}, got {self.world!r}")
        if self.content_dim < 1 or self.price_bands < 2 or self.id_buckets < 1:
            raise ValueError("need content_dim >= 1, price_bands >= 2 and id_buckets >= 1")
        if min(self.content_noise, self.id_share, self.price_weight) < 0:
            raise ValueError("content_noise, id_share and price_weight must be >= 0")
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
        self.item_latent = p.ad_latent  # (A, D): the latent relevance reads (v, or v' below)
        self.content = np.zeros((p.n_ads, 0))  # (A, K) the items' content vectors (attributes only)
        self.price_band = np.zeros(p.n_ads, dtype=np.int64)  # (A,)
        self.segment_price_sensitivity = np.zeros(world_config.n_segments)  # (G,)
        if self.config.world == "attributes":
            self._build_attributes()

    def _build_attributes(self) -> None:
        """The attribute world's item latent v', content vectors, price bands and sensitivities."""
        p, c = self.world.population, self.config
        rng = np.random.default_rng(np.random.SeedSequence([self.world.config.seed, ATTRIBUTE_STREAM]))
        category = self.category_means[p.ad_category]  # (A, D)
        residual = p.ad_latent - category
        counts = np.bincount(p.ad_advertiser, minlength=self.world.config.n_advertisers)
        sums = np.zeros((len(counts), residual.shape[1]))
        np.add.at(sums, p.ad_advertiser, residual)
        brand = (sums / np.maximum(counts, 1)[:, None])[p.ad_advertiser]  # (A, D)
        own = residual - brand
        dim = min(c.content_dim, own.shape[1])
        basis = np.linalg.qr(rng.normal(size=(own.shape[1], dim)))[0].T  # (K, D) orthonormal rows
        visible = own @ basis.T @ basis  # the own part the content shows
        self.item_latent = category + brand + visible + c.id_share * (own - visible)
        scale = np.sqrt(max(float(np.mean(np.sum((own @ basis.T) ** 2, axis=1))) / dim, 1e-12))
        self.content = own @ basis.T / scale + rng.normal(0.0, c.content_noise, (p.n_ads, dim))  # (A, K) ~ unit
        edges = np.quantile(p.ad_log_price_z, np.linspace(0, 1, c.price_bands + 1)[1:-1])
        self.price_band = np.searchsorted(edges, p.ad_log_price_z, side="right")
        self.segment_price_sensitivity = rng.normal(0.0, 1.0, self.world.config.n_segments)

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
        sensitivity = c.price_weight * self.segment_price_sensitivity[p.user_segment[queries.user]]  # (Q,)
        if items is None:
            affinity = queries.latent @ self.item_latent.T  # (Q, A)
            item_terms = c.bias_weight * p.ad_bias[None, :]
            price = sensitivity[:, None] * p.ad_log_price_z[None, :]
        else:
            affinity = np.einsum("qd,qkd->qk", queries.latent, self.item_latent[items])  # (Q, K)
            item_terms = c.bias_weight * p.ad_bias[items]
            price = sensitivity[:, None] * p.ad_log_price_z[items]
        return c.base_logit + c.alpha * affinity + item_terms + price

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
        if self.config.world == "ids":
            return FeatureSpec((*query, *(base[name] for name in CANDIDATE_FEATURES)))
        items = [base[name] for name in CANDIDATE_FEATURES]
        items[0] = replace(base["ad_id"], buckets=self.config.id_buckets)  # hashed into few buckets
        items.append(
            Feature("ad_price_band", "categorical", "candidate", buckets=4 * self.config.price_bands, required=False)
        )
        items += [Feature(name, "numeric", "candidate", required=False) for name in self.content_names]
        return FeatureSpec((*query, *items))

    @property
    def content_names(self) -> list[str]:
        return [f"ad_content_{k}" for k in range(self.content.shape[1])]

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
            **({"ad_price_band": _names("p", self.price_band[index])} if self.config.world == "attributes" else {}),
            **{name: self.content[index, k] for k, name in enumerate(self.content_names)},
        }
