import pytest

from common.features import MISSING_CATEGORY, Feature, FeatureSpec, NumericStats


def spec() -> FeatureSpec:
    return FeatureSpec(
        (
            Feature("user_id", "categorical", "context", buckets=100),
            Feature("device", "categorical", "context", buckets=8, required=False),
            Feature("ad_price", "numeric", "candidate"),
            Feature("user_age", "numeric", "context", required=False, default=35.0),
        ),
        {"ad_price": NumericStats(2.0, 0.5)},
    )


def test_dict_round_trip_keeps_everything():
    original = spec()
    assert FeatureSpec.from_dict(original.to_dict()) == original


def test_toml_round_trip(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(spec().to_toml())
    loaded = FeatureSpec.from_toml(path)
    assert loaded.features == spec().features
    assert loaded.by_name["device"].default == MISSING_CATEGORY
    assert loaded.by_name["user_age"].default == 35.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name", "kind": "numeric", "side": "context"}, "identifier"),
        ({"name": "x", "kind": "text", "side": "context"}, "kind"),
        ({"name": "x", "kind": "numeric", "side": "page"}, "side"),
        ({"name": "x", "kind": "categorical", "side": "context"}, "buckets"),
        ({"name": "x", "kind": "numeric", "side": "context", "default": float("nan")}, "finite"),
    ],
)
def test_invalid_features_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Feature(**kwargs)


def test_duplicate_names_are_refused():
    feature = Feature("x", "numeric", "context")
    with pytest.raises(ValueError, match="more than once"):
        FeatureSpec((feature, feature))


def test_offsets_cover_every_bucket():
    assert spec().total_buckets == 108
    assert not spec().is_fitted
