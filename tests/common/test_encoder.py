import tracemalloc
from dataclasses import replace
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import encoder as encoder_module
from common.encoder import FeatureEncoder, FeatureError, fit_statistics
from common.features import Feature, FeatureSpec
from common.hashing import bucketize

SPEC = FeatureSpec(
    (
        Feature("user_id", "categorical", "context", buckets=1000),
        Feature("device", "categorical", "context", buckets=8, required=False),
        Feature("ad_id", "categorical", "candidate", buckets=500),
        Feature("ad_price", "numeric", "candidate"),
        Feature("user_age", "numeric", "context", required=False, default=30.0),
    )
)
FITTED = fit_statistics(SPEC, {"ad_price": np.array([1.0, 2.0, 3.0]), "user_age": np.array([20.0, 40.0])})
ENCODER = FeatureEncoder(FITTED)

ids = st.one_of(st.integers(0, 10**9), st.text(min_size=1, max_size=10))


def test_fitted_statistics_standardise():
    assert FITTED.stats["ad_price"].mean == pytest.approx(2.0)
    encoded = ENCODER.encode({"user_id": "u1", "ad_id": ["a1", "a2"], "ad_price": [2.0, 3.0]}, 2)
    assert encoded.numeric[:, 0] == pytest.approx([0.0, 1.0 / np.std([1.0, 2.0, 3.0])])
    # absent optional numeric takes its default in raw units, then is standardised
    assert encoded.numeric[:, 1] == pytest.approx([(30.0 - 30.0) / 10.0] * 2)


@given(st.lists(st.tuples(ids, ids, st.floats(-1e6, 1e6)), min_size=1, max_size=30), ids)
def test_context_scalar_broadcast_equals_a_repeated_column(rows, user):
    ads = [r[0] for r in rows]
    prices = [r[2] for r in rows]
    broadcast = ENCODER.encode({"user_id": user, "ad_id": ads, "ad_price": prices}, len(rows))
    repeated = ENCODER.encode({"user_id": [user] * len(rows), "ad_id": ads, "ad_price": prices}, len(rows))
    assert np.array_equal(broadcast.categorical, repeated.categorical)
    assert np.array_equal(broadcast.numeric, repeated.numeric)


@given(st.lists(ids, min_size=1, max_size=100))
def test_each_categorical_lands_in_its_own_bucket_range(ads):
    encoded = ENCODER.encode({"user_id": "u", "ad_id": ads, "ad_price": [1.0] * len(ads)}, len(ads))
    user, device, ad = encoded.categorical.T
    assert ((user >= 0) & (user < 1000)).all()
    assert ((device >= 1000) & (device < 1008)).all()
    assert ((ad >= 1008) & (ad < 1508)).all()


@given(st.lists(ids, min_size=1, max_size=100))
def test_encoding_is_row_independent(ads):
    """A row encodes the same whatever else is in the batch (the service batches requests)."""
    columns = {"user_id": "u", "ad_id": ads, "ad_price": [1.5] * len(ads)}
    whole = ENCODER.encode(columns, len(ads))
    for i, ad in enumerate(ads[:5]):
        single = ENCODER.encode({"user_id": "u", "ad_id": [ad], "ad_price": [1.5]}, 1)
        assert np.array_equal(single.categorical[0], whole.categorical[i])


def test_unseen_categories_hash_like_any_other():
    encoded = ENCODER.encode({"user_id": "never-seen", "ad_id": ["new-ad"], "ad_price": [1.0]}, 1)
    assert encoded.categorical.shape == (1, 3)


def test_null_and_nan_take_an_optional_features_default():
    columns = {"user_id": "u", "ad_id": ["a", "b"], "ad_price": [1.0, 2.0], "user_age": [None, float("nan")]}
    encoded = ENCODER.encode(columns, 2)
    expected = (30.0 - FITTED.stats["user_age"].mean) / FITTED.stats["user_age"].std
    assert encoded.numeric[:, 1] == pytest.approx([expected, expected])


@pytest.mark.parametrize(
    ("columns", "feature"),
    [
        ({"user_id": "u", "ad_id": ["a", None], "ad_price": [1.0, 2.0]}, "ad_id"),  # a candidate's null
        ({"user_id": None, "ad_id": ["a", "b"], "ad_price": [1.0, 2.0]}, "user_id"),  # a context null
        ({"user_id": "u", "ad_id": np.array(["a", None], dtype=object), "ad_price": [1.0, 2.0]}, "ad_id"),
        ({"user_id": "u", "ad_id": ["a", "b"], "ad_price": [1.0, None]}, "ad_price"),
        ({"user_id": "u", "ad_id": ["a", "b"], "ad_price": np.array([1.0, np.nan])}, "ad_price"),
    ],
)
def test_a_required_features_null_is_refused_as_the_service_refuses_it(columns, feature):
    """/v1/score answers 422 "feature 'ad_id' is required but missing"; the encoder read "__missing__"."""
    with pytest.raises(FeatureError, match="is required but missing") as error:
        ENCODER.encode(columns, 2)
    assert error.value.feature == feature


def test_a_text_longer_than_the_services_limit_is_refused():
    """/v1/score answers 422 "longer than 1024 characters" (CTR_MAX_STRING_CHARS); the encoder hashed it."""
    long_id = "a" * 2000
    for columns in (
        {"user_id": "u", "ad_id": [long_id], "ad_price": [1.0]},  # the value path (a list of strings)
        {"user_id": long_id, "ad_id": ["a"], "ad_price": [1.0]},  # a context scalar
        {"user_id": "u", "ad_id": np.array([long_id]), "ad_price": [1.0]},  # the column path (numpy text)
    ):
        with pytest.raises(FeatureError, match="is longer than 1024 characters"):
            ENCODER.encode(columns, 1)
    assert FeatureEncoder(FITTED, max_chars=2000).encode({"user_id": "u", "ad_id": [long_id], "ad_price": [1.0]}, 1)
    at_limit = ENCODER.encode({"user_id": "u", "ad_id": ["b" * 1024], "ad_price": [1.0]}, 1)
    assert at_limit.categorical.shape == (1, 3)


@pytest.mark.parametrize("hour", [21.0, np.float64(21.0), np.array([21.0, np.nan])])
def test_a_whole_number_float_is_the_integer_it_is_for_a_categorical_feature(hour):
    """As /v1/score and the log reader take it (a pandas integer column with gaps is float64): 21.0 is 21,
    NaN is absent; a fraction is refused with the service's reason."""
    rows = 2
    base = {"user_id": "u", "ad_id": ["a", "b"], "ad_price": [1.0, 2.0]}
    as_float = ENCODER.encode({**base, "device": hour}, rows).categorical
    whole = [21, None] if isinstance(hour, np.ndarray) else 21
    assert (as_float == ENCODER.encode({**base, "device": whole}, rows).categorical).all()
    with pytest.raises(FeatureError, match=r"must be a string or an integer, not 21\.5"):
        ENCODER.encode({**base, "device": 21.5}, rows)


@pytest.mark.parametrize(
    ("columns", "feature", "reason"),
    [
        ({"ad_id": ["a"], "ad_price": [1.0]}, "user_id", "required"),
        ({"user_id": "u", "ad_id": ["a"], "ad_price": ["cheap"]}, "ad_price", "number"),
        ({"user_id": "u", "ad_id": ["a"], "ad_price": [True]}, "ad_price", "number"),
        ({"user_id": "u", "ad_id": [1.5], "ad_price": [1.0]}, "ad_id", "string or an integer"),
        ({"user_id": "u", "ad_id": ["a"], "ad_price": [1e39]}, "ad_price", "out of range"),
        ({"user_id": "u", "ad_id": ["a"], "ad_price": [1.0], "colour": "red"}, "colour", "not a feature"),
        ({"user_id": "u", "ad_id": ["a", "b"], "ad_price": [1.0]}, "ad_price", "has 1 value for 2 rows"),
        ({"user_id": "u", "ad_id": ["a"], "ad_price": [1.0, 2.0]}, "ad_price", "has 2 values for 1 row$"),
    ],
)
def test_bad_values_name_the_feature(columns, feature, reason):
    with pytest.raises(FeatureError, match=reason) as error:
        ENCODER.encode(columns, len(columns.get("ad_id", [0])))
    assert error.value.feature == feature


def test_values_far_from_the_training_mean_stay_finite_on_both_paths():
    """3e38 over a std of 0.8 overflowed float32 to inf, and the network answered NaN: a score of null in a
    200. A spec fitted before training ranges were kept clips standardised values at ±STANDARDISED_LIMIT,
    by the value path (plain lists) and the column path (numpy arrays) alike."""
    limit = encoder_module.STANDARDISED_LIMIT
    unranged = FeatureEncoder(FITTED.with_stats({n: replace(s, low=None, high=None) for n, s in FITTED.stats.items()}))
    for prices in ([3.0e38, -3.0e38, 2.0], np.array([3.0e38, -3.0e38, 2.0])):
        encoded = unranged.encode({"user_id": "u1", "ad_id": ["a", "b", "c"], "ad_price": prices, "user_age": 1e37}, 3)
        assert np.isfinite(encoded.numeric).all()
        assert encoded.numeric[:, 0].tolist() == [limit, -limit, 0.0] and encoded.numeric[0, 1] == limit


def test_values_outside_the_training_range_are_clipped_to_it_and_counted():
    """A price in cents (5927 where training saw 0 to 3, its default 0 among them) was standardised to
    hundreds of standard deviations and the network answered a saturated 0 or 1 (pctr 1.0 for an ad_quality
    of 82, pcvr 1.0 for an age in days). Each value is clipped to its feature's training range, on both
    paths, and counted by feature; the values training saw are left as they were."""
    encoder = FeatureEncoder(FITTED)
    assert (FITTED.stats["ad_price"].low, FITTED.stats["ad_price"].high) == (0.0, 3.0)
    edges = encoder.encode({"user_id": "u1", "ad_id": ["a", "b"], "ad_price": [0.0, 3.0], "user_age": 40.0}, 2)
    assert not encoder.clipped
    for prices in ([5927.0, -1e6, 2.0], np.array([5927.0, -1e6, 2.0])):
        encoded = encoder.encode({"user_id": "u1", "ad_id": ["a", "b", "c"], "ad_price": prices, "user_age": 1994}, 3)
        assert encoded.numeric[:2, 0].tolist() == [edges.numeric[1, 0], edges.numeric[0, 0]]
        assert encoded.numeric[2, 0] == 0.0 and encoded.numeric[0, 1] == edges.numeric[0, 1]
    assert encoder.clipped == {"ad_price": 4, "user_age": 6}  # the age, a context scalar, once per row


def test_the_training_range_holds_the_default_so_absent_values_encode_as_in_training():
    """An absent value takes the default, in training too: a default outside the logged values (0 for
    "unknown" among ages 20 to 40) widens the range rather than being clipped to 20."""
    spec = FeatureSpec(
        (
            Feature("user_id", "categorical", "context", buckets=10),
            Feature("age", "numeric", "context", required=False, default=0.0),
        )
    )
    fitted = fit_statistics(spec, {"age": np.array([20.0, 40.0, None], dtype=object)})
    assert (fitted.stats["age"].low, fitted.stats["age"].high) == (0.0, 40.0)
    encoder = FeatureEncoder(fitted)
    assert encoder.encode({"user_id": ["u"]}, 1).numeric[0, 0] == pytest.approx(-30.0 / 10.0)
    assert not encoder.clipped


def test_a_feature_no_log_gave_a_value_of_has_its_default_for_range():
    """It had no range, so a model trained today on logs without an optional column was taken at its load
    for one exported before ranges were kept; training saw the default alone, so that is its range."""
    spec = FeatureSpec(
        (
            Feature("user_id", "categorical", "context", buckets=10),
            Feature("age", "numeric", "context", required=False, default=30.0),
            Feature("bid", "numeric", "candidate", required=False, default=1.0),
        )
    )
    fitted = fit_statistics(spec, {"bid": np.array([None, None], dtype=object)})  # no age column; bids all null
    assert [(s.low, s.high) for s in fitted.stats.values()] == [(30.0, 30.0), (1.0, 1.0)]
    encoder = FeatureEncoder(fitted)
    assert encoder.encode({"user_id": ["u"], "age": [30.0], "bid": [None]}, 1).numeric.tolist() == [[0.0, 0.0]]
    assert encoder.encode({"user_id": ["u"], "age": [55.0], "bid": [7.0]}, 1).numeric.tolist() == [[0.0, 0.0]]
    assert encoder.clipped == {"age": 1, "bid": 1}


def test_the_range_travels_with_the_spec_and_an_old_spec_reads_without_one():
    assert FeatureSpec.from_dict(FITTED.to_dict()) == FITTED
    old = FITTED.to_dict()
    old["stats"] = {name: {"mean": s["mean"], "std": s["std"]} for name, s in old["stats"].items()}
    assert FeatureSpec.from_dict(old).stats["ad_price"].low is None
    with pytest.raises(ValueError, match="low and high must be finite numbers with low <= high"):
        FeatureSpec.from_dict({**old, "stats": {"ad_price": {"mean": 2.0, "std": 1.0, "low": 3.0, "high": 1.0}}})


def test_an_unfitted_spec_is_refused():
    with pytest.raises(ValueError, match="not fitted"):
        FeatureEncoder(SPEC)


plain_values = {
    "categorical": st.one_of(st.none(), st.integers(-(2**70), 2**70), st.text(max_size=12)),
    "numeric": st.one_of(
        st.none(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=False, width=64).filter(lambda x: x != x or abs(x) <= 3.4e38),
    ),
}


@st.composite
def small_batches(draw):
    """Columns as a service batch gives them: scalars or lists of plain values, some features absent."""
    n_rows = draw(st.integers(1, 150))
    columns = {}
    for feature in FITTED.features:
        if not feature.required and draw(st.booleans()):
            continue
        values = plain_values[feature.kind]
        if feature.required and feature.kind == "categorical":
            values = st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=12))
        if draw(st.booleans()):
            columns[feature.name] = draw(values)
        else:
            columns[feature.name] = draw(st.lists(values, min_size=n_rows, max_size=n_rows))
    return columns, n_rows


@given(small_batches())
def test_the_value_path_encodes_exactly_like_the_column_path(batch):
    """Plain values skip numpy's per-column work (buckets remembered per value); the tensors must not
    change, and what the column path refuses the value path refuses too (encode() then raises the
    column path's error). A fresh encoder (nothing remembered) and a used one agree."""
    columns, n_rows = batch
    try:
        expected = ENCODER._encode_columns(columns, n_rows)
    except FeatureError:  # the value path must refuse what the column path refuses
        assert ENCODER._encode_values(columns, n_rows) is None
        return
    for encoder in (FeatureEncoder(FITTED), ENCODER, ENCODER):  # nothing remembered, then warm
        by_value = encoder._encode_values(columns, n_rows)
        assert by_value is not None
        assert by_value.categorical.dtype == np.int64 and by_value.numeric.dtype == np.float32
        assert by_value.categorical.flags.c_contiguous and by_value.numeric.flags.c_contiguous
        assert np.array_equal(by_value.categorical, expected.categorical)
        assert np.array_equal(by_value.numeric, expected.numeric)


def test_a_full_memo_starts_afresh_and_still_encodes_alike(monkeypatch):
    monkeypatch.setattr(encoder_module, "MEMO_ENTRIES", 8)
    encoder = FeatureEncoder(FITTED)
    for start in range(0, 60, 5):  # 5 new ids a column: past 8 remembered, the memo starts afresh
        ads = [f"a{i}" for i in range(start, start + 5)] + [3, "3", None]
        required = [*ads[:-1], "x"]  # None only for the optional feature: a required one's is refused
        columns = {"user_id": "u", "ad_id": required, "device": ads, "ad_price": [1.0] * len(ads)}
        by_value = encoder._encode_values(columns, len(ads))
        assert np.array_equal(by_value.categorical, encoder._encode_columns(columns, len(ads)).categorical)
        assert all(len(memo.table) <= 8 for memo in encoder._memos)


@pytest.mark.parametrize("column", [[1.5], [True], [float("inf")], [1e39], np.array(["a"]), ["a", "b"], ("a",), b"a"])
def test_the_value_path_leaves_anything_unusual_to_the_column_path(column):
    columns = {"user_id": "u", "ad_id": ["a"], "ad_price": [1.0]}
    name = "ad_price" if column in ([float("inf")], [1e39], [True]) else "ad_id"
    assert ENCODER._encode_values({**columns, name: column}, 1) is None


def test_one_value_holding_a_column_s_spread_is_warned_of(caplog):
    """A price of 3e38 among prices near 40 set the std to 1e36, and every real price standardised to about
    the same number: the feature carried nothing, without a word. A heavy but honest tail is no warning."""
    import logging

    from common.encoder import fit_statistics
    from common.features import Feature, FeatureSpec

    spec = FeatureSpec((Feature("price", "numeric", "candidate"),))
    rng = np.random.default_rng(0)
    honest = rng.lognormal(3.0, 1.5, 5000).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="common.encoder"):
        fit_statistics(spec, {"price": honest})
        assert not caplog.records
        fit_statistics(spec, {"price": np.append(honest, np.float32(3e38))})
    (record,) = caplog.records
    assert record.getMessage().startswith("numeric feature 'price': one value of 5001, 3e+38, holds 100% of its spread")


# values whose text numpy makes in its own way: trailing NULs dropped (a NUL inside kept), integers past 64 bits,
# numpy integers beside the Python ones they equal, decomposed accents beside composed ones, lone surrogates
TRICKY_CATEGORIES = [
    "", "a", "a\x00", "a\x00\x00", "a\x00b", "\x00", "42", 42, np.int64(42), np.uint64(2**64 - 1), 2**64 - 1,
    -(2**70), np.int8(-3), "-3", np.str_("x"), "x", "caf\u00e9", "cafe\u0301", "日本🙂", " padded ", "x\ud800",
]  # fmt: skip
# values of very different lengths in one column (user agents and URLs beside ids), NULs inside and trailing
LONG_CATEGORIES = [
    *(("é" if n % 2 else "a") * n for n in (1, 7, 64, 65, 300, 1024)),
    "x\x00" + "🙂" * 298, "u" * 1023 + "\x00", np.str_("v" * 1022 + "\x00\x00"), "\x00" * 65, "日本" * 150,
]  # fmt: skip


@given(
    st.lists(
        st.one_of(
            st.sampled_from(TRICKY_CATEGORIES + LONG_CATEGORIES),
            st.text(max_size=6),
            st.integers(),
            st.text(max_size=80),
        ),
        max_size=200,
    )
)
def test_a_column_of_values_hashes_as_the_text_numpy_makes_of_each(values):
    """Distinct values are found before they are made text (one long value made every row's text as wide: 5.9 GB
    for 500,000 rows), and many are hashed in groups of like length (4.2 GB for 1,000,000 ids beside one
    1,024-character value); each bucket must stay the one of the value's text as numpy makes it, row by row."""
    feature = Feature("site", "categorical", "context", buckets=1009)
    column = np.array(values, dtype=object) if values else np.empty(0, dtype=object)
    expected = bucketize(column.astype(str), feature.buckets) if values else np.empty(0, dtype=np.int64)
    for ungrouped in (encoder_module.UNGROUPED_TEXTS, 0):  # as a request's values, and as a log's many
        with mock.patch.object(encoder_module, "UNGROUPED_TEXTS", ungrouped):
            for given_as in (values, column):
                buckets = encoder_module._categorical_buckets(feature, given_as, len(values), 1024)
                assert np.array_equal(buckets, expected)


def test_many_values_of_very_different_lengths_hash_as_the_text_numpy_makes_of_each():
    """Past UNGROUPED_TEXTS distinct values the grouped path, on every kind of value at once."""
    feature = Feature("site", "categorical", "context", buckets=1009)
    values = [f"id{i}" for i in range(2000)] + TRICKY_CATEGORIES + LONG_CATEGORIES + list(range(100))
    column = np.array(values * 2, dtype=object)
    expected = bucketize(column.astype(str), feature.buckets)
    assert np.array_equal(encoder_module._categorical_buckets(feature, column, column.size, 1024), expected)


def test_a_text_is_refused_past_max_chars_with_its_trailing_nuls_counted_on_both_paths():
    """The refusal measured numpy's width, trailing NULs counted ("u" * 1,024 + NUL is 1,025 characters): the
    grouped path measures the same."""
    feature = Feature("site", "categorical", "context", buckets=1009)
    ids = [f"id{i}" for i in range(100)]
    for ungrouped in (encoder_module.UNGROUPED_TEXTS, 0):
        with mock.patch.object(encoder_module, "UNGROUPED_TEXTS", ungrouped):
            accepted = [*ids, "u" * 1023 + "\x00"]
            assert encoder_module._categorical_buckets(feature, accepted, len(accepted), 1024).size == len(accepted)
            for too_long in ("u" * 1024 + "\x00", "\x00" * 1025, 10**1024):
                with pytest.raises(FeatureError, match="is longer than 1024 characters"):
                    encoder_module._categorical_buckets(feature, [*ids, too_long], len(ids) + 1, 1024)


def test_one_long_value_takes_no_memory_by_the_row_count():
    """100,000 rows of one short site and one of 1,024 characters: made text together, they took 410 MB (rows x
    1,024 characters x 4 bytes), 1.2 GB at the peak with np.unique's sort; the distinct values alone take a few MB."""
    rows = 100_000
    feature = Feature("site", "categorical", "context", buckets=1009)
    column = np.array(["example.com"] * rows, dtype=object)
    column[7] = "x" * 1024
    tracemalloc.start()
    try:
        buckets = encoder_module._categorical_buckets(feature, column, rows, 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < rows * 1024 * 4 / 20, f"{peak / 1e6:.0f} MB"
    assert buckets[7] == bucketize(["x" * 1024], 1009)[0] and (np.delete(buckets, 7) == buckets[0]).all()


def test_many_distinct_values_beside_a_long_one_take_memory_by_their_characters():
    """200,000 distinct short ids and one value of 1,024 characters: made text together, every id was as wide as the
    long one, 820 MB (1,000,000 ids: 4.2 GB and 38 s); hashed in groups of like length, memory follows the
    characters."""
    ids = [f"id{i:06d}" for i in range(200_000)]
    feature = Feature("site", "categorical", "context", buckets=1009)
    column = np.array([*ids, "x" * 1024], dtype=object)
    tracemalloc.start()
    try:
        buckets = encoder_module._categorical_buckets(feature, column, column.size, 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(ids) * 1024 * 4 / 20, f"{peak / 1e6:.0f} MB"
    assert buckets[-1] == bucketize(["x" * 1024], 1009)[0]
    assert np.array_equal(buckets[:1000], bucketize(ids[:1000], 1009))


def test_bytes_are_refused_for_a_numeric_feature_as_text_is():
    """numpy reads b"1.5" as the number 1.5: rows encoded by hand took bytes as numbers where the text "1.5" is
    refused (and a request cannot send bytes)."""
    for column in (np.array([1.0, b"1.5"], dtype=object), b"1.5"):
        with pytest.raises(FeatureError, match="must be a number") as error:
            ENCODER.encode({"user_id": "u", "ad_id": ["a", "b"], "ad_price": column}, 2)
        assert error.value.feature == "ad_price"
