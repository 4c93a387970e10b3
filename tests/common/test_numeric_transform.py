"""A numeric feature's ``transform = "log1p"`` (common/numeric_transform.py): the spec carries it, the one
encoder applies it on both of its paths, and values below its domain are refused naming the feature."""

from __future__ import annotations

import numpy as np
import pytest

from common.encoder import FeatureEncoder, FeatureError, fit_statistics
from common.features import Feature, FeatureSpec

COUNTS = [0, 0, 1, 2, 3, 5, 40, 90_000]


def count_spec(**options) -> FeatureSpec:
    return FeatureSpec(
        (
            Feature("ad_id", "categorical", "candidate", buckets=11),
            Feature("views", "numeric", "candidate", transform="log1p", **options),
            Feature("price", "numeric", "candidate"),
        )
    )


def fitted(**options) -> FeatureSpec:
    columns = {"ad_id": list(range(len(COUNTS))), "views": COUNTS, "price": [float(c) for c in COUNTS]}
    return fit_statistics(count_spec(**options), columns)


def test_the_statistics_and_the_encoding_are_of_log1p():
    spec = fitted()
    logs = np.log1p(np.array(COUNTS, dtype=np.float64))
    stats = spec.stats["views"]
    assert (stats.mean, stats.std, stats.low, stats.high) == (logs.mean(), logs.std(), 0.0, logs.max())
    assert spec.stats["price"].mean == np.mean(COUNTS)  # a feature without the key: as before
    encoder = FeatureEncoder(spec)
    columns = {"ad_id": [1, 2], "views": [3, 90_000], "price": [1.0, 2.0]}
    by_values = encoder.encode(columns, 2).numeric
    by_columns = encoder.encode({name: np.array(values) for name, values in columns.items()}, 2).numeric
    expected = ((np.log1p([3.0, 90_000.0]) - stats.mean) / stats.std).astype(np.float32)
    assert np.array_equal(by_values[:, 0], expected)
    assert np.array_equal(by_columns, by_values)


def test_an_absent_value_takes_the_default_through_the_transform():
    encoder = FeatureEncoder(fitted(required=False, default=9.0))
    stats = encoder.spec.stats["views"]
    expected = np.float32((np.log1p(9.0) - stats.mean) / stats.std)
    absent = encoder.encode({"ad_id": [1], "price": [1.0]}, 1).numeric[0, 0]
    null = encoder.encode({"ad_id": [1], "views": [None], "price": [1.0]}, 1).numeric[0, 0]
    nan = encoder.encode({"ad_id": np.array([1]), "views": np.array([np.nan]), "price": np.array([1.0])}, 1)
    assert absent == null == nan.numeric[0, 0] == expected


@pytest.mark.parametrize("as_array", [False, True])
def test_a_negative_count_is_refused_naming_the_feature_and_the_rule(as_array):
    encoder = FeatureEncoder(fitted())
    columns = {"ad_id": [1, 2], "views": [3, -1], "price": [1.0, 2.0]}
    with pytest.raises(FeatureError, match=r"feature 'views': must be at least 0 \(transform = \"log1p\""):
        encoder.encode({n: np.array(v) for n, v in columns.items()} if as_array else columns, 2)
    with pytest.raises(FeatureError, match="'views': must be at least 0"):
        fit_statistics(count_spec(), {"ad_id": [1], "views": [-2], "price": [1.0]})


def test_the_spec_carries_the_transform_and_an_old_spec_loads_as_before():
    spec = fitted()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    entries = {entry["name"]: entry for entry in spec.to_dict()["features"]}
    assert entries["views"]["transform"] == "log1p"
    assert "transform" not in entries["price"]  # model.json of a spec without transforms: as it was written before
    assert 'transform = "log1p"' in spec.to_toml()
    old = {"features": [{"name": "price", "kind": "numeric", "side": "candidate"}]}
    assert FeatureSpec.from_dict(old).features[0].transform is None


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (lambda: Feature("site", "categorical", "context", buckets=7, transform="log1p"), "on a categorical one"),
        (lambda: Feature("views", "numeric", "candidate", transform="log"), "not 'log'"),
        (lambda: Feature("views", "numeric", "candidate", required=False, default=-1.0, transform="log1p"), "default"),
    ],
)
def test_a_transform_the_feature_cannot_take_is_refused(feature, message):
    with pytest.raises(ValueError, match=message):
        feature()
