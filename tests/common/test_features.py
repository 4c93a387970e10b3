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


@pytest.mark.parametrize(
    ("entry", "message"),
    [  # required = "false" was kept as the (truthy) string; buckets = "128" failed naming no feature
        ('required = "false"', """[[feature]] 'site' required = "false": expected true or false, not a string"""),
        ('buckets = "128"', """[[feature]] 'site' buckets = "128": expected an integer, not a string"""),
        ("bucket = 128", "[[feature]] 'site' settings ['bucket'] are unknown (did you mean 'buckets'?)"),
        (  # a misspelt choice, not the quotes, is the mistake: it said "not a string"
            'kind = "categorial"',
            """[[feature]] 'site' kind = "categorial": expected one of "categorical", "numeric" """
            """(did you mean "categorical"?)""",
        ),
    ],
)
def test_a_spec_entry_of_the_wrong_type_is_named_by_its_feature(tmp_path, entry, message):
    lines = {"name": '"site"', "kind": '"categorical"', "side": '"context"', "buckets": "8"}
    key = entry.split(" = ")[0]
    lines = {k: v for k, v in lines.items() if k != key and not (key == "bucket" and k == "buckets")}
    (tmp_path / "spec.toml").write_text("[[feature]]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()) + entry)
    with pytest.raises(ValueError) as raised:
        FeatureSpec.from_toml(tmp_path / "spec.toml")
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("column", ["position", "click", "conversion", "request_id", "ts", "propensity"])
def test_a_spec_naming_a_column_of_the_log_format_is_refused_saying_why(tmp_path, column):
    """A `click` feature trained to AUC 1.0 on its own label, and the service asked for it in every request."""
    (tmp_path / "spec.toml").write_text(
        f'[[feature]]\nname = "site"\nkind = "categorical"\nside = "context"\nbuckets = 8\n\n'
        f'[[feature]]\nname = "{column}"\nkind = "numeric"\nside = "candidate"\n'
    )
    with pytest.raises(ValueError) as raised:
        FeatureSpec.from_toml(tmp_path / "spec.toml")
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'spec.toml'}: feature '{column}' is a column of the log format")
    assert "the trainer reads it as such" in message and "remove it from the spec" in message


@pytest.mark.parametrize("std", [0.0, -1.0, float("nan"), float("inf")])
def test_stats_of_a_std_that_is_no_positive_number_are_refused_naming_the_feature(std: float) -> None:
    """A hand-written spec's std of 0 or -1 standardised every value to ±inf (or flipped its sign)."""
    data = {
        "features": [{"name": "x", "kind": "numeric", "side": "candidate"}],
        "stats": {"x": {"mean": 0.0, "std": std}},
    }
    with pytest.raises(ValueError, match="feature spec stats of 'x': mean must be a finite number and std a positive"):
        FeatureSpec.from_dict(data)


def test_stats_holding_a_key_no_statistic_has_are_refused_naming_it_and_the_feature() -> None:
    """``p99`` in the stats of a feature was a Python error text (``NumericStats.__init__() got an unexpected
    keyword argument 'p99'``) in the service's log, its 503s and ``ctr export``; a feature entry's unknown key
    was named already."""
    data = {
        "features": [{"name": "ad_price", "kind": "numeric", "side": "candidate"}],
        "stats": {"ad_price": {"mean": 0.0, "std": 1.0, "p99": 3.0}},
    }
    with pytest.raises(ValueError) as raised:
        FeatureSpec.from_dict(data)
    assert str(raised.value).startswith("feature spec stats of 'ad_price' settings ['p99'] are unknown"), raised.value
    assert "keyword argument" not in str(raised.value)
