import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from common.hashing import bucketize, fnv1a64, fnv1a64_texts


def test_fnv1a64_matches_the_published_reference_values():
    # FNV-1a 64-bit test vectors: "" -> offset basis, "a" -> 0xaf63dc4c8601ec8c
    assert fnv1a64([""])[0] == 0xCBF29CE484222325
    assert fnv1a64(["a"])[0] == 0xAF63DC4C8601EC8C
    assert fnv1a64(["foobar"])[0] == 0x85944171F73967E8


def test_integers_hash_like_their_decimal_strings():
    assert (fnv1a64([42, 7, 123456789]) == fnv1a64(["42", "7", "123456789"])).all()


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=12), min_size=1, max_size=40))
def test_a_value_hashes_the_same_alone_and_among_others(values):
    together = fnv1a64(values)
    alone = np.array([fnv1a64([v])[0] for v in values], dtype=np.uint64)
    assert (together == alone).all()


@given(st.lists(st.text(max_size=8), min_size=1, max_size=30), st.integers(1, 10_000))
def test_buckets_are_in_range(values, buckets):
    result = bucketize(values, buckets)
    assert result.dtype == np.int64
    assert ((result >= 0) & (result < buckets)).all()


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=12), min_size=1, max_size=20))
def test_the_memoised_small_batch_path_matches_the_vectorised_one(values):
    from common.hashing import SMALL_BATCH

    padded = values + ["pad"] * (SMALL_BATCH + 1 - len(values))  # over SMALL_BATCH: the numpy path
    assert (fnv1a64(values) == fnv1a64(padded)[: len(values)]).all()


def test_trailing_nuls_are_dropped_alike_on_both_paths():
    """numpy's unicode arrays keep no trailing NULs: "a\x00" hashes as "a" in a request's small batch and
    in a log's column alike (so the trainer and the service agree); an inner NUL counts."""
    from common.hashing import SMALL_BATCH

    small = fnv1a64(["a947\x00", "a947", "a\x00b"])
    large = fnv1a64(["a947\x00", "a947", "a\x00b"] + ["pad"] * SMALL_BATCH)[:3]
    assert (small == large).all()
    assert small[0] == small[1] != small[2]


def test_bucketize_gives_the_buckets_every_exported_model_was_trained_with():
    """Golden values, computed with this code: every exported model's buckets were drawn with it, so a change
    to the hash or to how it is reduced to a bucket would score every categorical feature in the wrong
    bucket without any error."""
    values = ["ad_7", "u_1", "Mobile", "mobile", 42, ""]
    assert bucketize(values, 2).tolist() == [0, 0, 1, 1, 1, 1]
    assert bucketize(values, 97).tolist() == [22, 12, 35, 53, 34, 18]
    assert bucketize(values, 1000).tolist() == [750, 812, 63, 423, 691, 37]
    assert bucketize(values, 1 << 20).tolist() == [487414, 746116, 963351, 240439, 102947, 140069]


def test_values_reach_every_bucket_up_to_the_last():
    ids = [str(i) for i in range(100)]
    for buckets in (2, 3, 7):
        assert set(bucketize(ids, buckets).tolist()) == set(range(buckets))


def test_unsigned_integers_hash_like_the_same_integers():
    """An unsigned integer array (a log column read as uint64) hashes as its decimal strings, as signed ones do."""
    assert bucketize(np.array([1, 2], np.uint64), 97).tolist() == bucketize([1, 2], 97).tolist()
    assert (fnv1a64(np.array([7, 2**63], np.uint64)) == fnv1a64(["7", str(2**63)])).all()


# texts of very different lengths in one column: inner and trailing NULs, non-ASCII, emoji, a text of NULs alone
LENGTHS = (1, 7, 64, 65, 300, 1024)
MIXED_TEXTS = [
    *(("é" if n % 2 else "a") * n for n in LENGTHS),
    *("x\x00" + "🙂" * (n - 2) for n in LENGTHS[1:]),
    *("u" * (n - 1) + "\x00" for n in LENGTHS[1:]),
    *("\x00" * n for n in LENGTHS),
    "",
]


def test_texts_of_very_different_lengths_hash_in_groups_as_in_one_array():
    """fnv1a64_texts hashes like-length texts together (one array as wide as the longest took 4.2 GB for 1,000,000
    ids beside one 1,024-character value); each hash must stay the one array's."""
    texts = [f"id{i}" for i in range(500)] + MIXED_TEXTS + [str(2**64 - 1), "-3"]
    assert np.array_equal(fnv1a64_texts(texts), fnv1a64(np.asarray(texts, dtype=str)))
    assert fnv1a64_texts(["u\x00", "u", "x" * 1024])[0] == fnv1a64(["u"])[0]  # trailing NULs dropped
    assert fnv1a64_texts([]).size == 0


@given(
    st.lists(
        st.one_of(
            st.text(max_size=4),
            st.text(min_size=60, max_size=70),
            st.sampled_from(MIXED_TEXTS),
            st.builds(lambda part, n: (part * n)[:n], st.text(min_size=1, max_size=3), st.sampled_from(LENGTHS)),
        ),
        max_size=150,
    )
)
def test_the_grouped_hash_is_the_one_array_hash(texts):
    assert np.array_equal(fnv1a64_texts(texts), fnv1a64(np.asarray(texts, dtype=str)))
