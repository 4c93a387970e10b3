"""Reading a user's impression logs: wrong labels, empty logs and files that disagree are refused with a
message naming the file, the column and the first wrong row, before anything trains on them."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.encoder import FeatureEncoder
from common.features import Feature, FeatureSpec
from training.fitting.dataset import ImpressionTensors
from training.logs.feature_checks import check_features
from training.logs.files import log_files
from training.logs.label_checks import check_labels
from training.logs.log_quality import Disorder
from training.logs.reading import read_logs

HEADER = "request_id,ts,site,position,click,conversion"
GOOD = ["r0,1,a,1,1,1", "r0,2,a,2,0,0", "r1,3,b,1,1,0", "r1,4,b,2,0,0"]


def csv_log(tmp_path, rows: list[str], name: str = "logs.csv"):
    # HEADER is the one below (ending in a line break) when called: a blank line 2, which the reader skips, so
    # data row 4 is line 7 in the messages
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_good_labels_are_read_as_they_are(tmp_path):
    table = read_logs(csv_log(tmp_path, GOOD))
    assert table.num_rows == 4 and table.column("click").to_pylist() == [1, 0, 1, 0]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "r2,5,c,1,,0",
            r"logs\.csv: click must be 0 or 1 on every row; 1 row is not "
            r"\(row 4 \(line 7 of the CSV\), is missing",
        ),
        (
            "r2,5,c,1,2,0",
            r"click must be 0 or 1 on every row; 1 row is not \(row 4 \(line 7 of the CSV\), is 2\)",
        ),
        ("r2,5,c,1,-1,0", r"click must be 0 or 1 .* is -1\)"),
        ("r2,5,c,1,0.5,0", r"click must be 0 or 1 .* is 0\.5\)"),
        ("r2,5,c,1,1,3", r"conversion must be 0 or 1 .* is 3\)"),
        ("r2,5,c,0,1,0", r"position must be an integer of at least 1 on every row; 1 row is not .* is 0\)"),
        ("r2,5,c,,1,0", r"position must be an integer of at least 1 .* is missing\)"),
        ("r2,5,c,1.5,1,0", r"position must be an integer of at least 1 .* is 1\.5\)"),
        ("r2,5,c,1,yes,0", r"click must be 0 or 1 on every row, not string values"),
        (
            "r2,5,c,1,0,1",
            r"logs\.csv has conversions on unclicked impressions \(conversion 1 where click is 0\): 1 row "
            r"\(row 4 \(line 7 of the CSV\)\)",
        ),
    ],
)
def test_wrong_labels_are_refused_naming_the_file_column_and_first_row(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        read_logs(csv_log(tmp_path, [*GOOD, row]))


def test_conversions_missing_on_unclicked_rows_alone_are_said_to_be_0(tmp_path):
    """A conversion join that filled the clicked rows alone left nulls on the unclicked ones, refused as "1 rows
    are not (the first, row 4, is missing)" with no word on what to write; gaps on clicked rows get none."""
    with pytest.raises(ValueError) as refused:
        read_logs(csv_log(tmp_path, [*GOOD, "r2,5,c,1,0,", "r2,6,c,2,0,"]))
    assert str(refused.value).endswith(
        "conversion must be 0 or 1 on every row; 2 rows are not (the first, row 4 (line 7 of the CSV), "
        "is missing); the 2 missing are all "
        "on unclicked rows: write 0 there"
    )
    with pytest.raises(ValueError) as refused:
        read_logs(csv_log(tmp_path, [*GOOD, "r2,5,c,1,0,", "r2,6,c,2,1,"]))
    assert str(refused.value).endswith("2 rows are not (the first, row 4 (line 7 of the CSV), is missing)")


def test_boolean_clicks_and_conversions_are_taken_as_0_and_1(tmp_path):
    labels = {"position": [1, 2, 1], "click": [True, False, True], "conversion": [True, False, False]}
    table = pa.table({"site": ["a", "b", "a"], **labels})
    pq.write_table(table, tmp_path / "logs.parquet")
    spec = FeatureSpec((Feature("site", "categorical", "context", buckets=8),))
    tensors = ImpressionTensors.from_table(read_logs(tmp_path / "logs.parquet", spec), FeatureEncoder(spec)).tensors
    assert tensors["click"].tolist() == [1, 0, 1] and tensors["conversion"].tolist() == [1, 0, 0]


def test_a_log_without_rows_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"logs\.csv has no rows"):
        read_logs(csv_log(tmp_path, []))


def test_files_that_disagree_on_a_column_s_type_are_refused(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    csv_log(folder, GOOD, "a.csv")
    pq.write_table(pa.table({"site": [7], "position": [1], "click": [0], "conversion": [0]}), folder / "b.parquet")
    with pytest.raises(
        ValueError, match=r"impression log .*mixed/b\.parquet disagrees with \S*mixed/a\.csv .* on a column's type"
    ):
        read_logs(folder)


def test_the_check_reads_a_table_of_any_integer_or_float_type():
    table = pa.table(
        {
            "position": pa.array([1, 3], pa.int8()),
            "click": pa.array([1.0, 0.0], pa.float32()),
            "conversion": pa.array([0, 0], pa.uint8()),
        }
    )
    check_labels(table, "t")
    with pytest.raises(ValueError, match=r"t: click must be 0 or 1 .* is missing\)"):
        check_labels(table.set_column(1, "click", pa.array([1.0, np.nan], pa.float32())), "t")


def test_a_required_feature_missing_on_a_row_is_refused_as_the_service_refuses_it(tmp_path):
    spec = FeatureSpec((Feature("site", "categorical", "context", buckets=8), Feature("bid", "numeric", "candidate")))
    table = pa.table({"site": ["a", None, "b"], "bid": [1.0, 2.0, float("nan")], "position": [1, 2, 1],
                      "click": [0, 0, 1], "conversion": [0, 0, 0]})  # fmt: skip
    pq.write_table(table, tmp_path / "logs.parquet")
    with pytest.raises(ValueError, match=r"required feature 'site' is missing on 1 row \(row 1\)"):
        read_logs(tmp_path / "logs.parquet", spec)
    pq.write_table(table.set_column(0, "site", pa.array(["a", "b", "c"])), tmp_path / "logs.parquet")
    with pytest.raises(ValueError, match=r"required feature 'bid' is missing on 1 row \(row 2\): fill"):
        read_logs(tmp_path / "logs.parquet", spec)
    optional = FeatureSpec((spec.features[0], Feature("bid", "numeric", "candidate", required=False, default=1.0)))
    assert read_logs(tmp_path / "logs.parquet", optional).num_rows == 3


def test_a_file_that_cannot_be_read_is_named(tmp_path):
    (tmp_path / "logs.csv").write_text("")
    with pytest.raises(ValueError, match=r"impression log .*logs\.csv cannot be read: Empty CSV file"):
        read_logs(tmp_path / "logs.csv")
    (tmp_path / "logs.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match=r"impression log .*logs\.parquet cannot be read"):
        read_logs(tmp_path / "logs.parquet")


def test_a_spec_with_a_toml_mistake_is_named(tmp_path):
    (tmp_path / "spec.toml").write_text("[[feature]]\nname = site\n")
    with pytest.raises(ValueError, match=r"spec\.toml is not valid TOML: .*line 2"):
        FeatureSpec.from_toml(tmp_path / "spec.toml")


SITE_BID = FeatureSpec(
    (
        Feature("site", "categorical", "context", buckets=8, required=False),
        Feature("bid", "numeric", "candidate", required=False, default=1.0),
    )
)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["r0,1,a,1.5,1,0,0", "r0,2,a,cheap,2,0,0"],
            r"numeric feature 'bid' must be a finite number within float32's "
            r"range \(the column holds text\); 1 row is not \(row 1 \(line 3 of the CSV\), is 'cheap'\)",
        ),
        (
            ["r0,1,a,1.5,1,0,0", "r0,2,a,inf,2,0,0"],
            r"numeric feature 'bid' must be .*; 1 row is not \("
            r"row 1 \(line 3 of the CSV\), is inf\)",
        ),
        (
            ["r0,1,2.5,1.0,1,0,0"],
            r"categorical feature 'site' must be a string or an integer; 1 row is not "
            r"\(row 0 \(line 2 of the CSV\), is 2\.5\)",
        ),
    ],
)
def test_a_feature_value_the_service_would_refuse_is_refused_naming_its_row(tmp_path, rows, message):
    (tmp_path / "logs.csv").write_text("\n".join(["request_id,ts,site,bid,position,click,conversion", *rows]) + "\n")
    with pytest.raises(ValueError, match=message):
        read_logs(tmp_path / "logs.csv", SITE_BID)


def test_integers_with_gaps_written_as_floats_are_categories_as_integers(tmp_path):
    table = pa.table({"site": [3.0, None, 7.0], "bid": [1.0, 2.0, 3.0], "position": [1, 2, 1],
                      "click": [0, 0, 1], "conversion": [0, 0, 0]})  # fmt: skip
    pq.write_table(table, tmp_path / "logs.parquet")
    site = FeatureSpec(SITE_BID.features[:1])
    encoder = FeatureEncoder(site)
    from_floats = ImpressionTensors.from_table(read_logs(tmp_path / "logs.parquet", site), encoder).tensors
    as_requests = encoder.encode({"site": [3, None, 7]}, 3)  # as the service encodes a request's values
    np.testing.assert_array_equal(from_floats["categorical"].numpy(), as_requests.categorical)


def test_ids_past_2_53_written_as_floats_are_refused_as_the_service_refuses_them(tmp_path):
    """pandas writes an int64 column with gaps as float64, rounding ids past 2**53: both of these became
    1234567890123456768 and trained one bucket, while the service refuses such a float in a request and an ad
    server sends the exact id, which hashes to another bucket."""
    table = pa.table({"site": [3.0, 1234567890123456789.0, 1234567890123456790.0], "position": [1, 2, 1],
                      "click": [0, 0, 1], "conversion": [0, 0, 0]})  # fmt: skip
    pq.write_table(table, tmp_path / "logs.parquet")
    site = FeatureSpec(SITE_BID.features[:1])
    with pytest.raises(
        ValueError,
        match=r"categorical feature 'site' must be .* a whole float below 2\*\*53 .*write the ids as int64 or as "
        r"text\); 2 rows are not \(the first, row 1, is 1\.2345678901234568e\+18\)",
    ):
        read_logs(tmp_path / "logs.parquet", site)
    pq.write_table(table.set_column(0, "site", pa.array([3.0, 2.0**53, None])), tmp_path / "logs.parquet")
    with pytest.raises(ValueError, match=r"1 row is not \(row 1, is 9007199254740992\.0\)"):
        read_logs(tmp_path / "logs.parquet", site)  # the float 2**53 is also what 2**53 + 1 was written as


def test_a_numeric_feature_of_integers_past_2_53_is_refused_naming_it(tmp_path):
    """A uint64 id (Avazu's) kept as a numeric feature stopped the training with Arrow's "Integer value
    17860818330280365633 not in range: 0 to 9007199254740992", naming neither file nor column; as a float it
    rounds onto its neighbours'. A uint64 label past 2**53 is named as a wrong label too."""
    ids = pa.array([3, 17860818330280365633, 2**53 + 1], pa.uint64())
    table = pa.table({"id": ids, "position": [1, 2, 1], "click": [0, 0, 1], "conversion": [0, 0, 0]})
    pq.write_table(table, tmp_path / "logs.parquet")
    numeric = FeatureSpec((Feature("id", "numeric", "candidate"),))
    with pytest.raises(
        ValueError,
        match=r"logs\.parquet: numeric feature 'id' must be an integer below 2\*\*53 \(integers past 2\*\*53 cannot be "
        r"a numeric feature exactly: make it categorical in the spec or leave it out\); 2 rows are not \(the first, "
        r"row 1, is 17860818330280365633\)",
    ):
        read_logs(tmp_path / "logs.parquet", numeric)
    assert read_logs(tmp_path / "logs.parquet", FeatureSpec((Feature("id", "categorical", "candidate", buckets=8),)))
    with pytest.raises(ValueError, match=r"position must be an integer of at least 1 on every row; 1 row is not"):
        check_labels(table.set_column(1, "position", pa.array([1, 2**64 - 1, 1], pa.uint64())), "log")


def test_a_csv_s_categorical_codes_are_hashed_as_their_text_as_a_request_s(tmp_path):
    """pyarrow read the codes as integers, so ``07`` and ``03574`` trained as 7 and 3574 while a request's
    ``"07"`` is hashed as its text; an empty cell is still missing, as it was in the column of integers."""
    (tmp_path / "logs.csv").write_text(
        "site,position,click,conversion\n07,1,0,0\n03574,1,1,0\n,2,0,0\n7,1,0,0\n", encoding="utf-8"
    )
    site = FeatureSpec(SITE_BID.features[:1])
    encoder = FeatureEncoder(site)
    from_csv = ImpressionTensors.from_table(read_logs(tmp_path / "logs.csv", site), encoder).tensors
    as_requests = encoder.encode({"site": ["07", "03574", None, "7"]}, 4)
    np.testing.assert_array_equal(from_csv["categorical"].numpy(), as_requests.categorical)


def test_a_folder_of_csv_and_parquet_files_joins_a_categorical_column_of_codes_as_text(tmp_path):
    """A CSV's categorical codes keep their text, and a Parquet file beside it holds them as int64: the folder
    was refused as disagreeing types. The integers join as their text, hashed as a request's number is."""
    pq.write_table(
        pa.table({"site": [7, 8], "position": [1, 1], "click": [0, 1], "conversion": [0, 0]}), tmp_path / "a.parquet"
    )
    (tmp_path / "b.csv").write_text("site,position,click,conversion\n07,1,0,0\n8,1,1,0\n", encoding="utf-8")
    site = FeatureSpec(SITE_BID.features[:1])
    encoder = FeatureEncoder(site)
    joined = read_logs(tmp_path, site)
    assert joined.column("site").to_pylist() == ["7", "8", "07", "8"]
    from_logs = ImpressionTensors.from_table(joined, encoder).tensors
    as_requests = encoder.encode({"site": [7, 8, "07", "8"]}, 4)
    np.testing.assert_array_equal(from_logs["categorical"].numpy(), as_requests.categorical)


def test_a_missing_label_column_is_not_offered_as_an_optional_feature(tmp_path):
    spec = FeatureSpec((Feature("site", "categorical", "context", buckets=8),))
    pq.write_table(pa.table({"site": ["a"], "click": [0], "conversion": [0]}), tmp_path / "no_position.parquet")
    with pytest.raises(ValueError, match=r"lacks the columns \['position'\]: add them to the log; position: "):
        read_logs(tmp_path / "no_position.parquet", spec)
    pq.write_table(pa.table({"position": [1], "click": [0], "conversion": [0]}), tmp_path / "no_site.parquet")
    with pytest.raises(ValueError, match=r"lacks the columns \['site'\].*made optional in the spec"):
        read_logs(tmp_path / "no_site.parquet", spec)


def test_a_missing_label_is_said_with_what_it_means_and_what_to_write(tmp_path):
    """An Avazu-shaped log (clicks alone) was refused with "add them to the log", no word on what a log without
    positions or conversions should hold; a Criteo-shaped one's ``label`` went unnamed."""
    pq.write_table(pa.table({"site": ["a", "b"], "click": [0, 1]}), tmp_path / "avazu.parquet")
    with pytest.raises(ValueError) as refused:
        read_logs(tmp_path / "avazu.parquet")
    said = str(refused.value)
    assert said.startswith(f"impression log {tmp_path / 'avazu.parquet'} lacks the columns ['position', 'conversion']")
    assert "; position: every impression at one slot? add position = 1 on every row (the debiased models" in said
    assert "`ctr new NAME --kind esmm` makes the position-blind ESMM" in said
    assert "; conversion: clicks only? add conversion = 0 on every row (pCVR and pCTCVR are then meaningless" in said
    pq.write_table(pa.table({"label": [0, 1], "position": [1, 1], "conversion": [0, 0]}), tmp_path / "criteo.parquet")
    with pytest.raises(ValueError, match=r"\['click'\]: add them to the log; click: the log's 'label' is the click "):
        read_logs(tmp_path / "criteo.parquet")


def labelled(n: int, **columns) -> pa.Table:
    return pa.table({**columns, "position": [1] * n, "click": [0] * n, "conversion": [0] * n})


SITE = FeatureSpec((Feature("site", "categorical", "context", buckets=64),))


def test_a_directory_leaves_out_underscore_and_dot_paths_and_reads_partitions_in_number_order(tmp_path):
    """A Spark job's ``_temporary/`` and hidden files were read as the log's rows (1,950 where 1,800 were
    written), and ``hour=10`` sorted before ``hour=8``, so the latest rows held out were not the latest."""
    from training.logs.files import log_files

    for hour in (8, 9, 10, 11):
        folder = tmp_path / "dt=2026-11-01" / f"hour={hour}"
        folder.mkdir(parents=True)
        pq.write_table(labelled(2, site=[f"h{hour}"] * 2), folder / "part-0.parquet")
    (tmp_path / "_temporary" / "0").mkdir(parents=True)
    pq.write_table(labelled(5, site=["tmp"] * 5), tmp_path / "_temporary" / "0" / "part-0.parquet")
    pq.write_table(labelled(5, site=["hidden"] * 5), tmp_path / "dt=2026-11-01" / ".part-hidden.parquet")
    assert [f.parent.name for f in log_files(tmp_path)] == ["hour=8", "hour=9", "hour=10", "hour=11"]
    assert read_logs(tmp_path, SITE).column("site").to_pylist() == ["h8", "h8", "h9", "h9", "h10", "h10", "h11", "h11"]


def test_a_column_dictionary_encoded_in_one_file_and_plain_in_another_joins(tmp_path):
    """pandas' ``category`` in one export and plain strings in the next were refused as disagreeing types."""
    from training.logs.stream import ShardedLogs

    pq.write_table(labelled(2, site=["a", "b"]), tmp_path / "a.parquet")
    pq.write_table(labelled(2, site=pa.array(["b", "c"]).dictionary_encode()), tmp_path / "b.parquet")
    assert read_logs(tmp_path, SITE).column("site").to_pylist() == ["a", "b", "b", "c"]
    shards = ShardedLogs(tmp_path, SITE)
    read = [value for span in shards.spans(0, shards.rows) for value in shards.read(span).column("site").to_pylist()]
    assert read == ["a", "b", "b", "c"]


def test_a_decimal_numeric_feature_is_read_as_its_floats(tmp_path):
    """A warehouse's DECIMAL(12, 2) price was refused as "must be a finite number" naming Decimal('1.37')."""
    import decimal

    from training.logs.column_arrays import feature_columns

    prices = pa.array([decimal.Decimal("1.37"), decimal.Decimal("20.00"), None], pa.decimal128(12, 2))
    pq.write_table(labelled(3, price=prices), tmp_path / "log.parquet")
    spec = FeatureSpec((Feature("price", "numeric", "candidate", required=False, default=0.0),))
    values = feature_columns(read_logs(tmp_path / "log.parquet", spec), spec)["price"]
    assert values.dtype == np.float64 and values[:2].tolist() == [1.37, 20.0] and np.isnan(values[2])


def test_a_categorical_feature_of_bytes_is_its_utf8_text_and_other_types_are_named(tmp_path):
    """Bytes (Parquet's BYTE_ARRAY without UTF8) that were not ASCII failed with "'ascii' codec can't decode"
    naming nothing; a date column passed the check and failed in the encoder naming no file."""
    from training.logs.column_arrays import feature_columns

    def written(name: str, site: pa.Array):
        (tmp_path / name).mkdir()
        pq.write_table(labelled(2, site=site), tmp_path / name / "x.parquet")
        return tmp_path / name

    read = feature_columns(read_logs(written("bytes", pa.array(["café".encode(), b"a"], pa.binary())), SITE), SITE)
    encoder = FeatureEncoder(SITE)
    assert (encoder.encode(read, 2).categorical == encoder.encode({"site": ["café", "a"]}, 2).categorical).all()
    not_utf8 = r"bad/x\.parquet: categorical feature 'site' must be a string or an integer of at most 1024 characters"
    not_utf8 += r" \(bytes are read as UTF-8"
    with pytest.raises(ValueError, match=not_utf8 + r" text\); 1 row is not \(row 1, is b'\\xc3\('\)"):
        read_logs(written("bad", pa.array([b"a", b"\xc3("], pa.binary())), SITE)
    dates = written("dates", pa.array([0, 1], pa.int32()).cast(pa.date32()))
    with pytest.raises(
        ValueError,
        match=r"x\.parquet: categorical feature 'site' must be a string or an integer, not "
        r"date32\[day\] values; 2 rows are not \(the first, row 0, is datetime\.date\(1970, 1, 1\)\)",
    ):
        read_logs(dates, SITE)


def test_hive_partition_keys_are_columns_in_memory_and_streamed(tmp_path):
    """Spark and Hive write a partition's key in its folder's name (``country=US/``), not in its files: it
    was dropped, so a spec naming ``country`` found it missing from every file. Now it is a text column
    (URI-decoded; Hive's default partition is null), read alike by the in-memory and the streamed trainer."""
    from training.logs.stream import ShardedLogs

    for country, site in (("US", "a"), ("S%C3%A3o Tom%C3%A9", "b"), ("__HIVE_DEFAULT_PARTITION__", "c")):
        folder = tmp_path / "dt=2026-11-01" / f"country={country}"
        folder.mkdir(parents=True)
        pq.write_table(labelled(2, site=[site] * 2), folder / "part-0.parquet")
    spec = FeatureSpec(
        (
            Feature("site", "categorical", "context", buckets=64),
            Feature("country", "categorical", "context", buckets=64, required=False),
        )
    )
    table = read_logs(tmp_path, spec)
    rows = list(zip(table.column("site").to_pylist(), table.column("country").to_pylist(), strict=True))
    expected = [("a", "US")] * 2 + [("b", "São Tomé")] * 2 + [("c", None)] * 2
    assert sorted(rows, key=str) == sorted(expected, key=str) and table.column("dt").to_pylist() == ["2026-11-01"] * 6
    shards = ShardedLogs(tmp_path, spec)
    streamed = [
        row
        for span in shards.spans(0, shards.rows)
        for row in zip(*(shards.read(span).column(c).to_pylist() for c in ("site", "country")), strict=True)
    ]
    assert streamed == rows


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_column_name_held_twice_is_named(tmp_path, suffix):
    """Parquet's read failed with Arrow's "Multiple matches for FieldRef.Name(site) in site: string ...";
    a CSV was read with both, and a check took one of them."""
    path = tmp_path / f"log{suffix}"
    if suffix == ".csv":
        path.write_text("site,site,position,click,conversion\na,b,1,0,0\n")
    else:
        columns = [pa.array(["a"]), pa.array(["b"]), pa.array([1]), pa.array([0]), pa.array([0])]
        pq.write_table(pa.Table.from_arrays(columns, ["site", "site", "position", "click", "conversion"]), path)
    with pytest.raises(ValueError, match=rf"log{suffix} holds more than one column named 'site': keep one of them"):
        read_logs(path)


def test_a_partition_key_the_file_also_holds_and_bad_folders_are_refused_alike_by_both_readers(tmp_path):
    """A file holding ``country`` in a folder ``country=FR`` read "DE" in memory and "FR" streamed (the
    folder won once another file lacked the column); a key twice in a path, and a folder that is not
    URI-encoded UTF-8, read differently too. Each is now refused by both, naming the file."""
    from training.logs.stream import ShardedLogs

    spec = FeatureSpec((Feature("site", "categorical", "context", buckets=64),))
    cases = {
        "both": ("country=FR", {"country": ["DE", "DE"]}, r"holds a column 'country' and lies in a folder country="),
        "twice": ("country=US/country=FR", {}, r"lies in two folders of the partition key 'country'"),
        "not_utf8": ("country=%FF", {}, r"folder 'country=%FF' is not URI-encoded UTF-8 text"),
    }
    for name, (folders, columns, message) in cases.items():
        folder = tmp_path / name / folders
        folder.mkdir(parents=True)
        pq.write_table(labelled(2, site=["a", "b"], **columns), folder / "part-0.parquet")
        for reader in (read_logs, ShardedLogs):
            with pytest.raises(ValueError, match=r"part-0\.parquet.*" + message):
                reader(tmp_path / name, spec)


def test_logs_of_the_same_files_in_other_partition_folders_are_other_logs(tmp_path):
    """The fingerprint hashed each file's name and bytes, the streamed identity each file's name and size:
    two logs of the same files in ``country=`` folders of other names (other data, once folders are
    columns) were the same log to both; they name each file by its path below the log now."""
    from training.logs.fingerprint import fingerprint
    from training.logs.stream import ShardedLogs

    for log, countries in (("one", ("DE", "US")), ("two", ("FR", "US"))):
        for country, site in zip(countries, ("a", "b"), strict=True):
            (tmp_path / log / f"country={country}").mkdir(parents=True)
            pq.write_table(labelled(2, site=[site] * 2), tmp_path / log / f"country={country}" / "part-0.parquet")
    assert fingerprint(tmp_path / "one") != fingerprint(tmp_path / "two")
    assert ShardedLogs(tmp_path / "one", SITE).identity() != ShardedLogs(tmp_path / "two", SITE).identity()


def test_the_order_check_reads_numbers_and_times_and_skips_what_it_cannot_compare(caplog):
    """A struct ``ts`` stopped training with Arrow's error, text dates were compared as text, a drop across a
    null went unseen, and rows without a request_id were one impression named many times. Text that is no
    ISO-8601 time is not compared either, and says so (tests/training/logs/test_log_time.py)."""
    import datetime
    import logging

    caplog.set_level(logging.WARNING, logger="training.logs.log_quality")
    quiet = [
        pa.table({"ts": pa.array([{"s": 2}, {"s": 1}])}),
        pa.table({"ts": pa.array([None], pa.int64())}),
        pa.table({"request_id": pa.array([None] * 5, pa.string()), "position": [1] * 5}),
    ]
    for table in quiet:
        Disorder.of(table).warn("log")
    assert not caplog.records
    Disorder.of(pa.table({"ts": [1, None, 0]})).warn("gap")
    day = datetime.datetime(2024, 1, 2)
    Disorder.of(pa.table({"ts": pa.array([day, None, day - datetime.timedelta(days=1)])})).warn("times")
    Disorder.of(pa.table({"ts": pa.array([2, None, 1], pa.decimal128(20, 0))})).warn("decimals")
    assert [r.getMessage().split(":")[1] for r in caplog.records] == [" ts goes back at 1 row (row 2)"] * 3
    caplog.clear()
    Disorder.of(pa.table({"ts": ["9/1/2024", "10/1/2024"]})).warn("text")
    assert [r.getMessage()[:55] for r in caplog.records] == ["the time order of the logs text was not checked: ts hol"]


HEADER = "request_id,ts,site,position,click,conversion\n"


def test_a_csv_is_read_as_exports_write_one(tmp_path):
    """A text cell, an empty one and NA included, stays the text the service would hash for it in a request
    (as in Parquet: making the empty one missing trained it otherwise than a request's ""); a large file's
    quoted line breaks failed past pyarrow's first block; .csv.gz and .CSV files in a folder were skipped
    without a word, a .csv.gz given alone was read as Parquet, and X.CSV.GZ as plain text."""
    import bz2
    import gzip

    (tmp_path / "na.csv").write_text(
        HEADER + "".join(f"r{i},{i},{v},1,0,0\n" for i, v in enumerate(["a", "NA", "NULL", "null", "nan", ""]))
    )
    assert read_logs(tmp_path / "na.csv").column("site").to_pylist() == ["a", "NA", "NULL", "null", "nan", ""]
    quoted = HEADER + "".join(f'r{i},{i},"shop, inc\nline {i} ""x""",1,0,0\n' for i in range(60_000))
    (tmp_path / "big.csv").write_text(quoted)
    assert len(quoted) > 2 * 1024 * 1024  # past pyarrow's 1 MiB block
    table = read_logs(tmp_path / "big.csv")
    assert table.num_rows == 60_000 and table.column("site")[7].as_py() == 'shop, inc\nline 7 "x"'
    folder = tmp_path / "folder"
    folder.mkdir()
    rows = HEADER + "r0,0,a,1,0,0\n"
    (folder / "a.csv").write_text(rows)
    (folder / "b.CSV").write_text(rows)
    (folder / "c.csv.gz").write_bytes(gzip.compress(rows.encode()))
    (folder / "d.CSV.GZ").write_bytes(gzip.compress(rows.encode()))
    (folder / "e.csv.bz2").write_bytes(bz2.compress(rows.encode()))
    assert [p.name for p in log_files(folder)] == ["a.csv", "b.CSV", "c.csv.gz", "d.CSV.GZ", "e.csv.bz2"]
    assert read_logs(folder).num_rows == 5 and read_logs(folder / "c.csv.gz").num_rows == 1


def test_a_label_column_of_another_type_is_refused_naming_its_type():
    """Dates in a label column raised float()'s TypeError (a traceback) once a text label's value was shown."""
    import datetime

    table = pa.table({"position": [1], "click": pa.array([datetime.date(2024, 1, 1)]), "conversion": [0]})
    with pytest.raises(
        ValueError, match=r"click must be 0 or 1 on every row, not date32\[day\] values \(row 0, is datetime"
    ):
        check_labels(table, "log")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "request_id;ts;site;position;click;conversion\nr0;1;a;1;0;0\n",
            "lacks the columns ['position', 'click', 'conversion']: add them to the log; its header holds no comma",
        ),
        ("request_id,ts,site, position ,Click,conversion\nr0,1,a,1,0,0\n", "it has [' position ', 'Click']: column"),
        (
            HEADER + "r0,1,a,1,0,0\nr1,2,a,1,yes,0\n",
            "click must be 0 or 1 on every row, not string values (row 1 (line 3 of the CSV), is 'yes')",
        ),
        ("request_id;ts;price;position;click;conversion\nr0;1;0,5;1;0;0\n", "its header holds no comma: write"),
    ],
)
def test_a_csv_refusal_says_what_the_file_holds_instead(tmp_path, text, said):
    """A semicolon CSV was one column and "lacks the columns [...]"; `Click` and ` position ` went unnamed; a
    text label named no row."""
    (tmp_path / "log.csv").write_text(text)
    with pytest.raises(ValueError) as refused:
        read_logs(tmp_path / "log.csv")
    assert said in str(refused.value)


def test_a_comma_csv_whose_header_holds_a_semicolon_is_not_told_to_use_commas(tmp_path):
    (tmp_path / "log.csv").write_text("request_id,ts,site;x,position,click\nr0,1,a,1,0\n")
    with pytest.raises(ValueError) as refused:
        read_logs(tmp_path / "log.csv")
    assert "lacks the columns ['conversion']" in str(refused.value) and "holds no comma" not in str(refused.value)


def test_the_longest_text_and_the_largest_number_the_service_takes_are_taken():
    """At the limits, as the service's: a categorical text of 1,024 characters and float32's largest finite value
    pass; one character more, or the next float up, is refused."""
    spec = FeatureSpec((Feature("site", "categorical", "context", buckets=8), Feature("bid", "numeric", "candidate")))
    largest = float(np.finfo(np.float32).max)
    check_features(labelled(1, site=["x" * 1024], bid=[largest]), spec, "log")
    with pytest.raises(ValueError, match=r"'site' must be a string or an integer of at most 1024 characters; 1 row"):
        check_features(labelled(1, site=["x" * 1025], bid=[largest]), spec, "log")
    with pytest.raises(ValueError, match=r"'bid' must be a finite number within float32's range; 1 row is not"):
        check_features(labelled(1, site=["x"], bid=[float(np.nextafter(largest, np.inf))]), spec, "log")


def test_a_categorical_text_longer_than_the_service_takes_is_refused(tmp_path):
    """One 2 MB value took 7.4 GB in the encoder for 300 rows (its fixed-width array), where the service
    refuses a value past 1,024 characters; bytes, read as text, too."""
    spec = FeatureSpec((Feature("site", "categorical", "context", buckets=8),))
    table = pa.table({"site": pa.array([b"a", b"x" * 5000], pa.binary()), "position": [1, 1]})
    with pytest.raises(ValueError, match=r"of at most 1024 characters \(bytes are read as UTF-8 text\); 1 row is not"):
        check_features(table, spec, "log")
    (tmp_path / "log.csv").write_text(HEADER + "r0,0,a,1,0,0\n" + f"r1,1,{'x' * 5000},1,0,0\n")
    with pytest.raises(
        ValueError,
        match=r"must be a string or an integer of at most 1024 characters; 1 row is not "
        r"\(row 1 \(line 3 of the CSV\), is 'x{79}\.\.\. \(5000 characters\)\)",
    ):
        read_logs(tmp_path / "log.csv", spec)


def test_a_csv_that_is_not_utf8_is_refused_naming_its_file_column_row_and_how_to_re_encode_it(tmp_path):
    """A Windows-1252 (Latin-1) export read its text columns as bytes: ``ctr spec infer`` left them out with a
    header comment alone and exited 0, and ``ctr train`` refused "must be a string ... (bytes are read as UTF-8
    text)", neither saying that the file was in another encoding. Both now stop on one message saying so."""
    from training.logs.spec_infer import infer_spec

    rows = [f"r{i},{i},{'café.fr' if i % 3 == 2 else 'example.com'},1,0,0" for i in range(9)]
    (tmp_path / "latin1.csv").write_text(HEADER + "\n".join(rows) + "\n", encoding="latin-1")
    said = (
        r"impression log .*latin1\.csv: column 'site' must be UTF-8 text, as a CSV is read; 3 rows are not \(the "
        r"first, row 2 \(line 4 of the CSV\), is b'caf\\xe9\.fr'\): the file is in another encoding, so re-encode it "
        r"as UTF-8, .*"
        r"`iconv -f cp1252 -t utf-8 in\.csv > out\.csv`"
    )
    with pytest.raises(ValueError, match=said):
        infer_spec(tmp_path / "latin1.csv")
    with pytest.raises(ValueError, match=said):
        read_logs(tmp_path / "latin1.csv", SITE)
    (tmp_path / "utf8.csv").write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    assert read_logs(tmp_path / "utf8.csv", SITE).column("site")[2].as_py() == "café.fr"


def test_a_wrong_value_too_long_to_show_is_cut_whatever_its_type():
    """A wrong value longer than the refusal shows was measured with ``len`` of the value itself: a timestamp
    (or a decimal) has none, so the refusal raised a TypeError instead of naming the column."""
    spec = FeatureSpec((Feature("bid", "numeric", "candidate"),))
    zone = pa.array([1_700_000_000_000_000], pa.int64()).cast(pa.timestamp("us", tz="America/Los_Angeles"))
    table = pa.table({"bid": zone, "position": [1]})
    cut = r"numeric feature 'bid' .* is datetime\.datetime\(.{50,}\.\.\. \(\d+ characters\)"
    with pytest.raises(ValueError, match=cut):
        check_features(table, spec, "log")


@pytest.mark.parametrize("cuts", [[], [1], [3, 4], [2, 5, 7], [1, 2, 3, 4, 5, 6, 7]])
def test_disorder_of_consecutive_row_groups_joins_into_the_whole_log_s(cuts):
    """The streamed statistics pass summarises each row group and joins them: ts going back across a
    cut (a later shard earlier than the one before) counts as it does in the whole table."""
    table = pa.table({"ts": [5, None, 3, 4, None, 1, 9, 2], "request_id": ["a", "b", "c", "a", "d", "e", "f", "g"]})
    table = table.append_column("position", pa.array([1, 1, 2, 1, 1, 1, 1, 1]))
    whole = Disorder.of(table)
    assert (whole.backs, whole.first_back, whole.doubled) == (3, 2, 1)
    edges = [0, *cuts, table.num_rows]
    joined = Disorder()
    for lo, hi in itertools.pairwise(edges):
        joined = joined.then(Disorder.of(table.slice(lo, hi - lo)))
    assert (joined.backs, joined.first_back, joined.rows) == (whole.backs, whole.first_back, whole.rows)
    assert joined.first_back_after == whole.first_back_after == 0  # the last known ts before it: a warning's file
    assert joined.doubled == (0 if cuts else 1)  # found within a row group only: "a" twice, rows 0 and 3


def test_a_negative_count_of_a_log1p_feature_is_refused_naming_its_row(tmp_path):
    """``log1p`` takes counts from 0: a negative one is refused before training, as a request's is."""
    views = FeatureSpec((Feature("views", "numeric", "candidate", transform="log1p"),))
    table = pa.table({"views": [3, 0, -2, 7], "position": [1, 1, 1, 1], "click": [0, 1, 0, 0], "conversion": [0] * 4})
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(
        ValueError,
        match=r"numeric feature 'views' must be at least 0 \(transform = \"log1p\" takes counts\); 1 row is not "
        r"\(row 2, is -2\)",
    ):
        read_logs(tmp_path / "log.parquet", views)
    pq.write_table(table.set_column(0, "views", pa.array([3, 0, None, 7])), tmp_path / "log.parquet")
    optional = FeatureSpec((Feature("views", "numeric", "candidate", required=False, transform="log1p"),))
    assert read_logs(tmp_path / "log.parquet", optional).num_rows == 4  # a gap takes the default, not refused
