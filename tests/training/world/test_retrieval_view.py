"""The world's retrieval view: queries, popularity-biased exposure, non-displayed items, exact truth."""

from __future__ import annotations

import numpy as np
import pytest

from common.encoder import FeatureEncoder, fit_statistics
from training.world import World, WorldConfig
from training.world.retrieval import RetrievalConfig, RetrievalView


@pytest.fixture(scope="module")
def view() -> RetrievalView:
    return RetrievalView(World(WorldConfig(n_users=2000, n_ads=1000, n_advertisers=100)))


def test_same_seeds_same_queries_and_exposure(view: RetrievalView) -> None:
    a, b = view.queries(300, seed=4), view.queries(300, seed=4)
    np.testing.assert_array_equal(a.intent, b.intent)
    np.testing.assert_array_equal(view.expose(a, 4).items, view.expose(b, 4).items)
    assert not np.array_equal(view.queries(300, seed=5).user, a.user)


def test_exposure_shows_hot_items_and_leaves_most_of_the_long_tail_undisplayed(view: RetrievalView) -> None:
    queries = view.queries(1000, seed=0)
    exposure = view.expose(queries, seed=0)
    assert exposure.items.shape == exposure.click.shape == (1000, view.config.n_slots)
    assert all(len(set(row)) == view.config.n_slots for row in exposure.items.tolist())
    assert view.hot[exposure.items].mean() > 0.9  # impressions go to the popular fifth
    displayed = np.bincount(exposure.items.ravel(), minlength=view.n_items) > 0
    assert displayed[~view.hot].mean() < 0.5  # most long-tail items are never displayed
    assert 0.05 < exposure.click.mean() < 0.4


def test_clicks_follow_the_true_relevance(view: RetrievalView) -> None:
    queries = view.queries(2000, seed=1)
    exposure = view.expose(queries, seed=1)
    truth = view.relevance(queries, exposure.items) * view.examination
    assert exposure.click.mean() == pytest.approx(truth.mean(), abs=0.01)
    # pairwise relevance equals the whole-catalog relevance gathered at the same items
    catalog = view.relevance(queries)
    np.testing.assert_allclose(
        np.take_along_axis(catalog, exposure.items, axis=1), view.relevance(queries, exposure.items)
    )


def test_relevant_items_are_the_most_relevant(view: RetrievalView) -> None:
    queries = view.queries(20, seed=2)
    relevant = view.relevant_items(queries)
    catalog = view.relevance(queries)
    assert relevant.shape == (20, view.config.n_relevant)
    for row, items in zip(catalog, relevant, strict=True):
        assert row[items].min() >= np.sort(row)[-view.config.n_relevant]


def test_non_displayed_samples_were_never_displayed(view: RetrievalView) -> None:
    displayed = np.zeros(view.n_items, dtype=bool)
    displayed[:900] = True
    sampled = view.sample_non_displayed(displayed, (50, 4), seed=0)
    assert sampled.shape == (50, 4) and (sampled >= 900).all()
    with pytest.raises(ValueError, match="no non-displayed"):
        view.sample_non_displayed(np.ones(view.n_items, dtype=bool), (1, 1), seed=0)


def test_query_and_item_features_encode_with_the_spec(view: RetrievalView) -> None:
    queries = view.queries(10, seed=3)
    spec = view.feature_spec()
    assert {f.name for f in spec.for_side("context").features} == {
        "user_id", "user_segment", "device", "user_age", "query_category"
    }  # fmt: skip
    columns = {**view.query_columns(queries), **view.item_columns(np.arange(10))}
    fitted = fit_statistics(spec, columns)
    encoded = FeatureEncoder(fitted).encode(columns, 10)
    assert encoded.categorical.shape == (10, len(spec.categorical))
    assert view.item_columns()["ad_id"][7] == "a7"


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="n_slots"):
        RetrievalConfig(n_slots=60, n_candidates=50)
    with pytest.raises(ValueError, match="hot_fraction"):
        RetrievalConfig(hot_fraction=1.0)
    with pytest.raises(ValueError, match="world"):
        RetrievalConfig(world="brands")


def _explained_share(target: np.ndarray, design: np.ndarray) -> float:
    """R^2 of the least-squares fit of ``target`` (A, D) on ``design`` (A, P)."""
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return 1.0 - float(((target - design @ coef) ** 2).sum() / ((target - target.mean(0)) ** 2).sum())


def test_attribute_world_relevance_is_read_from_what_the_item_tower_sees(view: RetrievalView) -> None:
    """Attributes: category, brand (advertiser) and content explain the relevance latent almost fully;
    in the id-dominated control the same attributes leave the items' own part unexplained."""
    p = view.world.population
    assert view.config.world == "attributes"  # the default
    control = RetrievalView(view.world, RetrievalConfig.id_dominated())
    one_hot = np.concatenate(
        [
            np.eye(view.world.config.n_categories)[p.ad_category],
            np.eye(view.world.config.n_advertisers)[p.ad_advertiser],
        ],
        axis=1,
    )
    attributes = np.concatenate([one_hot, view.content], axis=1)
    assert _explained_share(view.item_latent, attributes) > 0.98
    assert _explained_share(control.item_latent, attributes) < 0.9
    assert control.content.shape == (view.n_items, 0)


def test_attribute_world_features(view: RetrievalView) -> None:
    spec = view.feature_spec().by_name
    assert spec["ad_id"].buckets == view.config.id_buckets  # hashed into few buckets
    assert {"ad_price_band", "ad_content_0", "ad_content_3"} <= set(spec)
    bands = view.item_columns()["ad_price_band"]
    prices = view.item_columns()["ad_price"]
    cheap, dear = prices < np.quantile(prices, 0.1), prices > np.quantile(prices, 0.9)
    assert set(bands[cheap]) == {"p0"} and set(bands[dear]) == {f"p{view.config.price_bands - 1}"}
    control = RetrievalView(view.world, RetrievalConfig.id_dominated()).feature_spec().by_name
    assert control["ad_id"].buckets >= 2 * view.n_items and "ad_content_0" not in control


def test_price_sensitivity_moves_relevance_by_segment(view: RetrievalView) -> None:
    """The logit's price term is price_weight * (the query's segment sensitivity) * (standardised log
    price): each segment prefers dear or cheap items, which the user_segment and price features show."""
    queries = view.queries(200, seed=5)
    c = view.config
    without = RetrievalView(view.world, RetrievalConfig(price_weight=0.0))
    difference = view.relevance_logit(queries) - without.relevance_logit(queries)  # (Q, A)
    p = view.world.population
    expected = c.price_weight * view.segment_price_sensitivity[p.user_segment[queries.user]][:, None]
    np.testing.assert_allclose(difference, expected * p.ad_log_price_z[None, :], atol=1e-9)
