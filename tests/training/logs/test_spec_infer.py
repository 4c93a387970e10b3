"""``ctr spec infer``'s proposals (training/logs/spec_infer.py) for the column types a warehouse export holds."""

from __future__ import annotations

import decimal
import math
import tomllib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common.features import FeatureSpec
from common.hashing import bucketize
from training.logs.spec_infer import MAX_BUCKETS, MIN_BUCKETS, buckets_for, infer_spec

ROWS = 200


def spec_of(tmp_path, **columns: pa.Array):
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "site": rng.choice(["a", "b", "c"], ROWS),
            "position": np.ones(ROWS, np.int64),
            "click": np.zeros(ROWS, np.int64),
            "conversion": np.zeros(ROWS, np.int64),
            **columns,
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    proposal = infer_spec(tmp_path / "log.parquet")
    return proposal.spec, proposal.skipped


def test_columns_of_other_types_are_left_out_saying_their_type(tmp_path):
    """A list or struct column crashed the proposal (Arrow has no count_distinct for them), even one no
    feature would use; a date column too is left out by its type."""
    spec, skipped = spec_of(
        tmp_path,
        tags=pa.array([[i % 3] for i in range(ROWS)]),
        meta=pa.array([{"a": i % 2} for i in range(ROWS)]),
        day=pa.array(np.arange(ROWS) % 5, pa.int32()).cast(pa.date32()),
    )
    assert [f.name for f in spec.features] == ["site"]
    assert skipped["tags"] == "type list<element: int64> is neither text nor a number"
    assert (
        skipped["meta"].startswith("type struct<") and skipped["day"] == "type date32[day] is neither text nor a number"
    )


def test_a_decimal_column_is_numeric(tmp_path):
    """A warehouse's DECIMAL(12, 2) price was left out as "neither text nor a number"."""
    prices = [decimal.Decimal(f"{i % 97}.25") if i % 10 else None for i in range(ROWS)]
    spec, _ = spec_of(tmp_path, ad_price=pa.array(prices, pa.decimal128(12, 2)))
    price = spec.by_name["ad_price"]
    assert price.kind == "numeric" and not price.required
    assert price.default == float(np.median([float(p) for p in prices if p is not None]))


def test_whole_number_floats_are_categorical_as_integers_are(tmp_path):
    """pandas' integers with gaps (a float column of whole numbers with nulls) were proposed numeric, though
    the trainer reads them as the integers they are; a float column with fractions stays numeric."""
    ids = pa.array([float(i % 40) if i % 9 else None for i in range(ROWS)], pa.float64())
    spec, _ = spec_of(tmp_path, ad_id=ids, score=pa.array(np.arange(ROWS) / 7))
    assert spec.by_name["ad_id"].kind == "categorical" and not spec.by_name["ad_id"].required
    assert spec.by_name["score"].kind == "numeric"


def test_bytes_are_text_when_they_are_utf8(tmp_path):
    """Parquet's BYTE_ARRAY without the UTF8 annotation was left out as "neither text nor a number"."""
    sites = pa.array([f"s{i % 5}é".encode() for i in range(ROWS)], pa.binary())
    raw = pa.array([bytes([0xC3, i % 4]) for i in range(ROWS)], pa.binary())
    spec, skipped = spec_of(tmp_path, page=sites, raw=raw)
    assert spec.by_name["page"].kind == "categorical" and skipped["raw"] == "bytes that are not UTF-8 text"


def test_numbers_written_as_text_are_proposed_with_a_caution(tmp_path):
    """ "9,182.0", "0,405" or numbers beside "None" were proposed categorical without a word: the user meant
    a number, and the model hashed each price as a category."""
    from training.logs.spec_infer import spec_toml

    separators = pa.array([f"{1000 + i % 50:,}.5" for i in range(ROWS)])
    commas = pa.array([f"0,{i % 97}" for i in range(ROWS)])
    nones = pa.array(["None" if i % 5 == 0 else str(i / 7) for i in range(ROWS)])
    plain_text = pa.array([f"s{i % 9}" for i in range(ROWS)])
    countries = pa.array(["NA" if i % 4 == 0 else ["US", "FR"][i % 2] for i in range(ROWS)])
    pq.write_table(
        pa.table(
            {
                "price": separators,
                "score": commas,
                "age": nones,
                "site": plain_text,
                "country": countries,
                "position": np.ones(ROWS, np.int64),
                "click": np.zeros(ROWS, np.int64),
                "conversion": np.zeros(ROWS, np.int64),
            }
        ),
        tmp_path / "log.parquet",
    )
    proposal = infer_spec(tmp_path / "log.parquet")
    assert set(proposal.cautions) == {"price", "score", "age", "country"}
    assert proposal.cautions["country"].startswith("holds ['NA'] as categories")
    assert proposal.cautions["price"].startswith("numbers written with ','")
    assert proposal.cautions["age"].startswith("numbers beside a missing-value word")
    assert "# check: 'price': numbers written with ','" in spec_toml(proposal, tmp_path / "log.parquet")


def test_proposed_buckets_are_primes_so_every_bit_of_a_value_counts():
    """FNV-1a modulo a power of two 2^k reads only each character's low k bits: the powers of two proposed
    before put "Mobile" and "mobile" (or "US" and "us") in one bucket whatever the luck. A prime modulus
    reads every bit; the counts stay at least 4x the distinct values, within [8, 2^20]."""
    for distinct in (1, 2, 3, 50, 1000, 200_000):
        buckets = buckets_for(distinct)
        assert all(buckets % d for d in range(2, math.isqrt(buckets) + 1)), buckets
        assert max(MIN_BUCKETS, 4 * distinct) <= buckets < MAX_BUCKETS
    assert buckets_for(1 << 20) == 1048573  # the last prime below 2^20
    pairs = [("Mobile", "mobile"), ("US", "us"), ("1", "Q"), ("s1", "sq")]
    for buckets in (16, 32):
        assert all(a == b for a, b in bucketize(pairs, buckets).reshape(-1, 2).tolist()), buckets
    assert not any(a == b for a, b in bucketize(pairs, buckets_for(len(pairs) * 2)).reshape(-1, 2).tolist())


def test_times_under_other_names_are_proposed_with_a_caution(tmp_path):
    """Only ts, time and timestamp were known as times: ``event_time`` and ``ts_ms`` (epoch numbers) were proposed
    as numeric features and a text ``dt`` as a categorical one without a word, while a ``dt=`` folder key was
    cautioned; a time that only grows is past what the model trained on for every request served after the logs.
    Numbers that are not all epoch times in one unit (a price, an id) are proposed without one."""
    from training.logs.spec_infer import spec_toml

    start = 1_709_985_600  # 2024-03-09 12:00 UTC
    event_time = start + 37 * np.arange(ROWS)
    proposal_of = {
        "event_time": pa.array(event_time),
        "ts_ms": pa.array(event_time * 1000),
        "seen_us": pa.array((event_time * 1_000_000).astype(np.float64)),
        "dt": pa.array([f"2024-03-{9 + i % 3:02d}" for i in range(ROWS)]),
        "price": pa.array(np.linspace(0.5, 2e9, ROWS)),  # from 0.5: no unit puts it in 2000..2100
        "user": pa.array(start + np.arange(ROWS) % 7 - 3 * 10**9),  # ten digits, before 2000 in seconds
    }
    pq.write_table(
        pa.table(
            {
                **proposal_of,
                "position": np.ones(ROWS, np.int64),
                "click": np.zeros(ROWS, np.int64),
                "conversion": np.zeros(ROWS, np.int64),
            }
        ),
        tmp_path / "log.parquet",
    )
    proposal = infer_spec(tmp_path / "log.parquet")
    assert {f.name for f in proposal.spec.features} == set(proposal_of)  # proposed, not left out
    assert set(proposal.cautions) == {"event_time", "ts_ms", "seen_us", "dt"}
    for name, unit in (("event_time", "seconds"), ("ts_ms", "milliseconds"), ("seen_us", "microseconds")):
        assert proposal.cautions[name].startswith(
            f"every value reads as an epoch time ({unit} since 1970, between 2000"
        )
    assert proposal.cautions["dt"].startswith("dates or times written as text: every value a request sends after")
    assert "# check: 'dt': dates or times written as text" in spec_toml(proposal, tmp_path / "log.parquet")


def test_an_integer_column_of_many_values_is_proposed_numeric_with_a_caution(tmp_path):
    """An integer ad_id of thousands of values was proposed as a numeric feature without a word: as a number
    its order and size mean nothing. Fractional numbers and an integer column of few values get no caution."""
    from training.logs.spec_infer import spec_toml

    rows = 3000
    table = pa.table(
        {
            "ad_id": pa.array(np.arange(rows) % 2500 * 7 + 100_000),  # 2,500 values, no epoch time in any unit
            "bid": pa.array(np.linspace(0.1, 5.0, rows)),
            "slot_kind": pa.array(np.arange(rows) % 5),
            "position": np.ones(rows, np.int64),
            "click": np.zeros(rows, np.int64),
            "conversion": np.zeros(rows, np.int64),
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    proposal = infer_spec(tmp_path / "log.parquet")
    kinds = {f.name: f.kind for f in proposal.spec.features}
    assert kinds == {"ad_id": "numeric", "bid": "numeric", "slot_kind": "categorical"}
    assert set(proposal.cautions) == {"ad_id"}
    assert proposal.cautions["ad_id"] == (
        "integers with 2500 distinct values (more than 1,000), proposed numeric: an integer id? As a number its "
        "order and size would mean something they do not; make it categorical or leave it out"
    )
    assert "# check: 'ad_id': integers with 2500 distinct values" in spec_toml(proposal, tmp_path / "log.parquet")


def test_a_log_without_label_columns_is_proposed_leaving_criteo_s_label_out(tmp_path):
    """A log of clicks alone (Avazu's, Criteo's) was refused for lacking position and conversion, which a proposal
    never reads; Criteo's ``label`` (its click) would be proposed as a feature, and a ``click`` is left out still."""
    rng = np.random.default_rng(0)
    sites = rng.choice(["a", "b", "c"], ROWS)
    pq.write_table(pa.table({"label": rng.integers(0, 2, ROWS), "site": sites}), tmp_path / "criteo.parquet")
    proposal = infer_spec(tmp_path / "criteo.parquet")
    assert [f.name for f in proposal.spec.features] == ["site"]
    assert proposal.skipped == {
        "label": "the click label by another name (Criteo's), not a feature: rename it to click"
    }
    pq.write_table(pa.table({"click": rng.integers(0, 2, ROWS), "site": sites}), tmp_path / "avazu.parquet")
    assert [f.name for f in infer_spec(tmp_path / "avazu.parquet").spec.features] == ["site"]


def test_unsigned_ids_past_2_53_are_looked_at_without_stopping_the_proposal(tmp_path):
    """A uint64 id (Avazu's) stopped ``ctr spec infer`` with "Integer value 17860818330280365633 not in range: 0
    to 9007199254740992" from a safe cast of values only looked at (as times, for a median)."""
    rows = 3000
    ids = (np.arange(rows) % 1500).astype(np.uint64) * np.uint64(10**15) + np.uint64(2**63)
    pq.write_table(
        pa.table(
            {
                "device_id": pa.array(ids, pa.uint64()),
                "user_id": pa.array([int(v) if i % 7 else None for i, v in enumerate(ids)], pa.uint64()),
                "click": np.zeros(rows, np.int64),
            }
        ),
        tmp_path / "log.parquet",
    )
    proposal = infer_spec(tmp_path / "log.parquet")
    assert {f.name: f.kind for f in proposal.spec.features} == {"device_id": "numeric", "user_id": "numeric"}
    assert proposal.cautions["device_id"].startswith("integers with 1500 distinct values (more than 1,000)")


def test_integral_numbers_different_on_every_row_are_left_out_as_text_ids_are(tmp_path):
    """A CSV's row id read as numbers (Avazu's ``id``, as doubles: past 2**63) was proposed as a required numeric
    feature with a ``# check:`` line alone, where the same id as text was left out. Epoch times, each different,
    are still proposed (with their own caution), as are fractions different on every row."""
    rows = 1500
    ids = [str(10**19 + 7919 * i) for i in range(rows)]
    lines = ["id,impression,event_time,bid,site,click"] + [
        f"{ids[i]},{i * 3},{1_709_985_600 + i},{i / 7:.4f},s{i % 3},{i % 2}" for i in range(rows)
    ]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proposal = infer_spec(tmp_path / "log.csv")
    assert {f.name for f in proposal.spec.features} == {"event_time", "bid", "site"}
    for name in ("id", "impression"):  # read as double (past int64) and as int64
        assert proposal.skipped[name] == "a different value on every row: an id, not a feature"


def test_dates_written_as_digits_are_proposed_with_a_caution(tmp_path):
    """Avazu's ``hour`` (YYMMDDHH, 14102100) and a YYYYMMDD ``day`` were proposed categorical without a word, though
    a request served after the logs sends an hour no training row held; their kind stays as it was. Eight digits
    that are no date (a month 34, a 30 February) get no caution."""
    from training.logs.spec_infer import spec_toml

    hours = 14102100 + np.arange(ROWS) % 24
    proposal_of = {
        "hour": pa.array(hours),
        "day": pa.array([20240227 + i % 3 for i in range(ROWS)]),  # 27 to 29 February 2024, a leap year
        "day_text": pa.array([f"{20241230 + i % 2}" for i in range(ROWS)]),
        "code": pa.array(12345678 + np.arange(ROWS) % 9),
        "not_leap": pa.array([20230228 + i % 2 for i in range(ROWS)]),  # 29 February 2023 is no day
    }
    spec_of(tmp_path, **proposal_of)  # writes log.parquet
    proposal = infer_spec(tmp_path / "log.parquet")
    assert {f.name: f.kind for f in proposal.spec.features} == {
        "site": "categorical",
        **dict.fromkeys(proposal_of, "categorical"),
    }
    assert set(proposal.cautions) == {"hour", "day", "day_text"}
    assert proposal.cautions["hour"].startswith(
        "every value reads as a YYMMDDHH date written as digits (14102100 is 2014-10-21, hour 00): every value a "
        "request sends after the logs (the next day's) is an unseen category"
    )
    for name in ("day", "day_text"):
        assert proposal.cautions[name].startswith("every value reads as a YYYYMMDD date written as digits (20240309")
    assert "# check: 'hour': every value reads as a YYMMDDHH date" in spec_toml(proposal, tmp_path / "log.parquet")


def test_a_column_that_names_the_slot_is_left_out(tmp_path):
    """Avazu's ``banner_pos`` (position = banner_pos + 1) was proposed as a feature: the model learnt the slot's
    effect through it and the served slot-1 pCTR followed what a client sent in it. A column that position
    does not determine, or that does not determine position, is kept."""
    rng = np.random.default_rng(0)
    position = rng.integers(1, 4, ROWS)
    pq.write_table(
        pa.table(
            {
                "banner_pos": position - 1,
                "slot_name": pa.array(np.array(["top", "mid", "low"])[position - 1]).dictionary_encode(),
                "ad": rng.integers(0, 20, ROWS),  # at many slots
                "page_slot": position * 10 + rng.integers(0, 2, ROWS),  # determines position, not determined by it
                "position": position,
                "click": np.zeros(ROWS, np.int64),
            }
        ),
        tmp_path / "log.parquet",
    )
    proposal = infer_spec(tmp_path / "log.parquet")
    assert {f.name for f in proposal.spec.features} == {"ad", "page_slot"}
    for name in ("banner_pos", "slot_name"):
        assert proposal.skipped[name].startswith("it and position determine each other (one value at each slot")


def test_floats_past_2_53_are_not_proposed_as_a_categorical_the_trainer_would_refuse(tmp_path):
    """A float id column past 2**53 (pandas' int64 with gaps) was proposed categorical, which ``ctr train`` then
    refused (a whole float below 2**53 only, the service's rule): proposal and check now read one rule."""
    ids = pa.array([float(2**53 + 2 * (i % 40)) for i in range(ROWS)], pa.float64())
    spec, _ = spec_of(tmp_path, ad_id=ids)
    assert "ad_id" not in spec.by_name or spec.by_name["ad_id"].kind != "categorical"


def test_a_column_name_with_a_line_break_stays_inside_its_comment(tmp_path):
    """A CSV header's ``"we\\nird"`` was written raw into ``# left out:``: its second line was no comment, so
    ``ctr new --spec`` refused the proposal as not TOML, and a crafted name's lines were read as features."""
    from training.logs.spec_infer import spec_toml

    crafted = 'x\n[[feature]]\nname = "evil"\nkind = "numeric"\nside = "candidate"'
    header = ["site", "we\nird", crafted, "position", "click", "conversion"]
    lines = [",".join('"' + name.replace('"', '""') + '"' for name in header)]
    lines += [f"s{i % 3},{i % 4},{i % 5},1,0,0" for i in range(ROWS)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proposal = infer_spec(tmp_path / "log.csv")
    text = spec_toml(proposal, tmp_path / "log.csv")
    assert "# left out: 'we\\nird': not an identifier" in text.splitlines()[1]
    assert FeatureSpec.from_dict(tomllib.loads(text)) == proposal.spec
    assert [f.name for f in proposal.spec.features] == ["site"]


def test_values_that_differ_only_in_normalisation_or_spaces_are_cautioned_of(tmp_path):
    """ "café.fr" composed and decomposed, or " padded.com " beside "padded.com", are different categories (the
    service hashes a request's text as it is sent), and the proposal said nothing: one site's rows split in two."""
    from training.logs.spec_infer import spec_toml

    sites = ["caf\u00e9.fr", "cafe\u0301.fr", "example.com"]
    spec_of(  # writes the log read below
        tmp_path,
        page=pa.array([sites[i % 3] for i in range(ROWS)]),
        shop=pa.array([[" padded.com ", "padded.com", "NA"][i % 3] for i in range(ROWS)]),
        plain=pa.array([["Mobile", "mobile", "tablet"][i % 3] for i in range(ROWS)]),
    )
    proposal = infer_spec(tmp_path / "log.parquet")
    assert set(proposal.cautions) == {"page", "shop"}
    assert proposal.cautions["page"].startswith(
        "values that differ only in Unicode normalisation or in the spaces around them are different categories "
        "('caf\\xe9.fr' and 'cafe\\u0301.fr'): a request's text is hashed as it is sent"
    )
    assert proposal.cautions["shop"].startswith("holds ['NA'] as categories")  # beside the column's other caution
    assert (
        "; values that differ only in Unicode normalisation or in the spaces around them are different "
        in (proposal.cautions["shop"])
    )
    assert "(' padded.com ' and 'padded.com')" in proposal.cautions["shop"]
    text = spec_toml(proposal, tmp_path / "log.parquet")
    assert "# check: 'page': values that differ only in Unicode normalisation" in text
    assert FeatureSpec.from_dict(tomllib.loads(text)) == proposal.spec


def test_a_heavy_tailed_count_is_proposed_log1p_saying_why(tmp_path):
    """Counts mostly 0-10 with a tail to 10^5 (Criteo's I1-I13): log1p; a Poisson count, a uniform integer, a
    count with a negative value and a float column with a heavy tail are left as they are."""
    rng = np.random.default_rng(1)
    counts = np.floor(rng.lognormal(1.0, 3.0, 20_000)).astype(np.int64)  # past 1,000 distinct values: numeric
    rows = len(counts)
    table = pa.table(
        {
            "site": rng.choice(["a", "b", "c"], rows),
            "position": np.ones(rows, np.int64),
            "click": np.zeros(rows, np.int64),
            "conversion": np.zeros(rows, np.int64),
            "views": counts,
            "poisson": rng.poisson(200_000, rows),
            "uniform": rng.integers(0, 10_000, rows),
            "signed": np.where(np.arange(rows) == 0, -1, counts),
            "spend": rng.lognormal(1.0, 2.5, rows),
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    proposal = infer_spec(tmp_path / "log.parquet")
    by_name = proposal.spec.by_name
    assert by_name["views"].kind == by_name["poisson"].kind == "numeric"
    assert by_name["views"].transform == "log1p"
    assert "heavy tail" in proposal.cautions["views"] and "99th percentile" in proposal.cautions["views"]
    assert [by_name[n].transform for n in ("poisson", "uniform", "signed", "spend")] == [None] * 4
    assert 'transform = "log1p"' in proposal.spec.to_toml()


def test_a_heavy_tailed_count_of_few_distinct_values_is_still_proposed_log1p(tmp_path):
    """docs/encoding.md's measured log (reports/count_transform_log.py, 80,000 rows) had two of its three counts
    proposed categorical, as integers of under 1,000 distinct values (159-305): each count a category of its own,
    the tail's unseen in serving. A small code column with 0 on most rows stays categorical."""
    from reports.count_transform_log import impression_log

    table = impression_log("log", seed=0, rows=3_000)
    codes = np.where(np.arange(table.num_rows) % 10 == 0, np.arange(table.num_rows) % 40, 0)  # 0 on 90 %, 40 codes
    pq.write_table(table.append_column("offer_code", pa.array(codes)), tmp_path / "log.parquet")
    by_name = infer_spec(tmp_path / "log.parquet").spec.by_name
    for name in ("views_7d", "clicks_30d", "sessions_30d"):
        assert (by_name[name].kind, by_name[name].transform) == ("numeric", "log1p"), name
    assert by_name["offer_code"].kind == "categorical"
