"""Proposing a feature spec from a log's columns (``ctr spec infer``), for the user to edit.

The labels are not read (a log of clicks alone, Avazu's or Criteo's, is proposed from as it is: ``ctr train``
says what to add). Rules, per column other than the labels (position, click, conversion, and Criteo's ``label``
in a log without ``click``), the request's id/time, the logging policy's ``propensity`` and the world
simulator's ground truth (``true_ctr``, ...: a feature made of them would leak the answer into a model trained
on ``ctr simulate``'s logs):
- strings, booleans (read as 0/1, which is how requests must send them) and integers with at most
  ``MAX_CATEGORICAL_INTEGERS`` distinct values (floats that are all whole numbers too: pandas' integers
  with gaps, read as integers) are categorical, with ``buckets`` the next prime >= 4 x the distinct values
  seen (so that the hashing collides little and new values have room), between 8 and 2^20: FNV-1a modulo a
  power of two 2^k keeps only the low k bits of each character (common/hashing.py), so at 16 or 32 buckets
  ``Mobile`` and ``mobile`` always share one, where a prime modulus reads every bit; other numbers
  (decimals included) are numeric;
- bytes are text when they are UTF-8 (as the trainer reads them); columns of any other type (lists,
  structs, dates) are left out, saying their type (a CSV's text that is not UTF-8 stops the proposal, as it stops
  training: ``read_tables`` names the file and says how to re-encode it);
- the side is ``context`` when the column holds one value within every request (``request_id``),
  else ``candidate`` (``candidate`` when the log has no ``request_id``);
- a column with nulls is optional: categorical with the missing category, numeric with the median;
- a column of whole numbers from 0 up with a heavy tail (``heavy_tail``: the 99th percentile at least
  ``HEAVY_TAIL_RATIO`` times the median, each plus 1) and ``MIN_COUNT_VALUES`` distinct values or more is a count,
  numeric even with fewer distinct values than would make an integer categorical, proposed with
  ``transform = "log1p"`` and a caution saying why (common/numeric_transform.py);
- a text column two of whose values differ only in Unicode normalisation or surrounding spaces is cautioned of
  (``LOOKALIKES``): each is its own category, as the service does not normalise a request's text;
- constant columns, all-null columns and string or integral columns unique on every row (ids; but for epoch
  times) are left out, and so is a column that ``position`` and it determine each other (Avazu's ``banner_pos``):
  a feature of it would learn the slot's effect, and a slot-1 model's served pCTR would follow what a request
  sends in it, not the slot (left out rather than cautioned: it is the position under another name);
- a time under another name than ``ts``/``time``/``timestamp`` (``event_time``, ``ts_ms``, a text ``dt``) is
  proposed as its type says, with a caution: dates or times written as text, or as digits (YYYYMMDD, Avazu's
  YYMMDDHH ``hour``), are categories the next day's value is unseen in, and numbers that are all epoch times
  (seconds to nanoseconds, between 2000 and 2100: ``training/logs/log_time.py``) grow past their training range on
  every request served after the logs.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.encoder import whole_floats, whole_numbers
from common.features import Feature, FeatureSpec
from common.log_columns import CLICK_ALIASES, LABEL_COLUMNS, RESERVED_COLUMNS
from common.numeric_transform import LOG1P
from common.path_text import path_text
from training.logs.arrow_types import is_number, is_text
from training.logs.files import log_files
from training.logs.log_time import EPOCH_UNITS, EPOCH_YEARS, epoch_units, text_instants
from training.logs.partitions import partition_values
from training.logs.reading import read_tables
from training.world.logs import GROUND_TRUTH_COLUMNS

SKIPPED_COLUMNS = {
    **{name: f"{why}, not a feature" for name, why in RESERVED_COLUMNS.items() if name not in LABEL_COLUMNS},
    **dict.fromkeys(("timestamp", "time"), "the request's time, by its name"),
    **dict.fromkeys(GROUND_TRUTH_COLUMNS, "the world simulator's ground truth: as a feature it would leak the answer"),
}
# pandas' index, written as a column by to_parquet when it is not a plain range (a filtered or sorted frame):
# a row number, whose order leaks time into the model, and a value no request has
PANDAS_INDEX = re.compile(r"__index_level_\d+__")
MAX_CATEGORICAL_INTEGERS = 1_000
FOLDER_KEY = (
    "read from the folders' names ({name}=...): every request must send it, and a value the logs never held "
    "(the next day's) is an unseen category; leave it out unless requests carry it"
)
TIME_TEXT = (
    "dates or times written as text: every value a request sends after the logs (the next day's) is an unseen "
    "category; leave it out unless requests carry a value the logs held"
)
EPOCH_TIME = (
    "every value reads as an epoch time ({unit} since 1970, between {first} and {last}): a time that only grows is "
    "past its training range (or an unseen category) on every request served after the logs; leave it out, or "
    "derive a repeating part (hour of day, day of week)"
)
DIGIT_DATES = (
    "every value reads as a {form} date written as digits ({example}): every value a request sends after the logs "
    "(the next day's) is an unseen category, or past its training range as a number; leave it out, or derive a "
    "repeating part (hour of day, day of week)"
)
# form -> (how it is written, an example): 8 digits each; Avazu's hour is YYMMDDHH
DIGIT_DATE_FORMS = {"YYYYMMDD": "20240309 is 2024-03-09", "YYMMDDHH": "14102100 is 2014-10-21, hour 00"}
INTEGER_ID = (
    "integers with {distinct} distinct values (more than "
    + f"{MAX_CATEGORICAL_INTEGERS:,}"
    + "), proposed numeric: an "
    "integer id? As a number its order and size would mean something they do not; make it categorical or leave it out"
)
# A count is proposed log1p when its top percent lies an order of magnitude or more above its typical row (each
# plus 1, so a median of 0, most rows never clicked, counts): standardised as it is, the std is then the tail's and
# the bulk of the rows lands within a fraction of a std of each other. A Poisson count (mean 5: p99 11, median 5,
# a ratio of 2) or a uniform one (0-10,000: ratio 2) standardises well and is left as it is; floats are not
# proposed so (a price's or a score's spread is what the user chose to log)
HEAVY_TAIL_RATIO = 10.0
# A heavy-tailed count holds fewer than MAX_CATEGORICAL_INTEGERS distinct values in a small log (the measured log of
# docs/encoding.md, 80,000 rows: 159-305 in two of its three counts), and was proposed categorical: each count its own
# category, the tail's unseen in serving. From this many values up it is proposed as a count; below it (a code of a
# few values, 0 for most rows) a category, as before
MIN_COUNT_VALUES = 100
HEAVY_TAIL = (
    "counts from 0 with a heavy tail (99th percentile {p99:g}, median {median:g}), proposed with "
    'transform = "log1p": standardised as they are, the tail sets the std and most rows become about the same '
    "number; remove the line if the scale itself matters, or make it categorical if the numbers are codes"
)
SLOT_ALIAS = (
    "it and position determine each other (one value at each slot: Avazu's banner_pos), so as a feature the model "
    "would learn the slot's effect through it, which the position model is there to learn, and a served slot-1 "
    "pCTR would depend on what a request sends in it"
)
SAMPLED_VALUES = 10_000  # of a text column, looked at for numbers written as text
LOOKALIKE_VALUES = 100_000  # distinct values of a text column, looked at for two that differ only in form
LOOKALIKES = (
    "values that differ only in Unicode normalisation or in the spaces around them are different categories "
    "({pair}): a request's text is hashed as it is sent, so write the log and the requests alike "
    "(normalised to NFC, spaces trimmed, say), or leave them apart if they mean different things"
)
MISSING_WORDS = frozenset({"none", "-", "?", "n.a.", "missing", "unknown"})  # beyond what CSV reads as null
NULL_WORDS = frozenset({"", "na", "n/a", "#n/a", "null", "nan", "none"})  # missing to pandas, categories here
MIN_BUCKETS, MAX_BUCKETS = 8, 1 << 20


def buckets_for(distinct: int) -> int:
    """The next prime >= 4 x ``distinct`` and >= 8, or the last prime below 2^20."""
    wanted = max(MIN_BUCKETS, 4 * distinct)
    if wanted >= MAX_BUCKETS:
        return next(n for n in range(MAX_BUCKETS, 1, -1) if _is_prime(n))
    return next(n for n in itertools.count(wanted) if _is_prime(n))


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))


class Proposal(NamedTuple):
    spec: FeatureSpec
    skipped: dict[str, str]  # column left out -> why
    cautions: dict[str, str]  # proposed feature -> what to check before training on it


def infer_spec(path: Path) -> Proposal:
    """The spec proposed for the logs at ``path``, the columns left out and why, and what to check."""
    table = read_tables(path, "impression log")  # no label is read: a log of features alone (Avazu's) is proposed too
    folder_keys = {key for file in log_files(path) for key in partition_values(file, path)}
    skipped: dict[str, str] = {}
    cautions: dict[str, str] = {}
    features: list[Feature] = []
    for name in table.column_names:
        if name in LABEL_COLUMNS:
            continue
        if name in SKIPPED_COLUMNS:
            skipped[name] = SKIPPED_COLUMNS[name]
            continue
        if name in CLICK_ALIASES and "click" not in table.column_names:
            skipped[name] = "the click label by another name (Criteo's), not a feature: rename it to click"
            continue
        if PANDAS_INDEX.fullmatch(name):
            skipped[name] = "pandas' index written as a column (a row's number or label), not a feature"
            continue
        feature, reason = _infer_feature(table, name)
        if feature is None or _names_the_slot(table, name):
            skipped[name] = reason or SLOT_ALIAS
            continue
        features.append(feature)
        column = table.column(name)
        distinct = _distinct_values(column)  # once: three of the cautions read them
        caution = (
            _numbers_as_text(column)
            or _missing_as_text(column.type, distinct)
            or (FOLDER_KEY.format(name=name) if name in folder_keys else "")
            or _time_values(distinct)
            or reason  # a feature's own caution from _infer_feature, after the more specific ones above
        )
        # said beside any of those: it is about two of the values, not about what the column holds
        caution = "; ".join(filter(None, (caution, _lookalike_values(distinct))))
        if caution:
            cautions[name] = caution
    if not features:
        raise ValueError(f"no column of {path} can be a feature ({skipped}); add feature columns to the log")
    return Proposal(FeatureSpec(tuple(features)), skipped, cautions)


def _numbers_as_text(column: pa.ChunkedArray) -> str:
    """A caution for a text column whose values are numbers once written plainly ("9,182.0", "0,405"), or
    but for a missing-value word ("None"): proposed categorical, it was the number a user meant ("" if
    not such a column)."""
    if not is_text(column.type):
        return ""
    values = [v.strip() for v in column.drop_null().to_pylist()[:SAMPLED_VALUES]]
    if not values or all(_number_text(v) for v in values):  # (CSV reads such a column as numbers)
        return ""
    plain = [v for v in values if v.lower() not in MISSING_WORDS]
    if plain and all(_number_text(v) for v in plain):
        return "numbers beside a missing-value word (None, -, ?): replace it with an empty cell to read numbers"
    if all(_number_text(v.replace(",", "")) or _number_text(v.replace(",", ".")) for v in values):
        return "numbers written with ',' (thousands separators or decimal commas): write them plainly to read numbers"
    return ""


def _distinct_values(column: pa.ChunkedArray) -> pa.Array:
    """The column's distinct non-null values, a dictionary column's decoded."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.drop_null().unique()


def _missing_as_text(column_type: pa.DataType, distinct: pa.Array) -> str:
    """A caution for a text column (of ``column_type``; ``distinct``: its ``_distinct_values``) holding words that
    mean missing elsewhere (NA, NULL, nan, an empty text): here they are categories, as the service hashes a
    request's "NA" or "" ("" if none)."""
    if not is_text(column_type):
        return ""
    words = sorted({v for v in distinct.to_pylist() if v.strip().lower() in NULL_WORDS})
    if not words:
        return ""
    return (
        f"holds {words} as categories (a request's value is hashed alike): if they mean missing, make them null "
        "(in Parquet: a CSV's text column cannot hold a null) and leave the feature out of such requests"
    )


def _lookalike_values(distinct: pa.Array) -> str:
    """A caution for a text column (``distinct``: its ``_distinct_values``) two of whose values differ only in
    Unicode normalisation (``"caf\\u00e9"`` and ``"cafe\\u0301"``) or in the spaces around them (``" padded.com "``
    and ``"padded.com"``): each is a category of its own, as the service hashes a request's text as it is sent
    (docs/encoding.md), so the rows of one site were split in two, without a word ("" if no two are so). Looked
    for among the first ``LOOKALIKE_VALUES`` distinct values, each normalised to NFC and trimmed in Arrow: the
    work stays bounded."""
    if not is_text(distinct.type):
        return ""
    values = distinct[:LOOKALIKE_VALUES]
    alike = pc.utf8_trim_whitespace(pc.utf8_normalize(values, "NFC"))
    if pc.count_distinct(alike).as_py() == len(values):
        return ""
    first_of: dict[str, str] = {}
    for value, key in zip(values.to_pylist(), alike.to_pylist(), strict=True):
        if key in first_of:
            first = first_of[key]
            # composed and decomposed accents print alike: their code points tell them apart
            pair = f"{first!r} and {value!r}" if first.strip() == value.strip() else f"{first!a} and {value!a}"
            return LOOKALIKES.format(pair=pair)
        first_of[key] = value
    return ""


def _time_values(values: pa.Array) -> str:
    """A caution for a column of times (``values``: its ``_distinct_values``) under a name other than ``ts``: text
    that parses as ISO-8601 dates or times (``TIME_TEXT``), numbers that are all epoch times in one unit
    (``EPOCH_TIME``); "" otherwise."""
    if not len(values):
        return ""
    if is_text(values.type):
        try:
            text_instants(values)
        except pa.ArrowInvalid:
            return _digit_dates(values)
        return TIME_TEXT
    if not is_number(values.type):
        return ""
    if pa.types.is_integer(values.type) and (digits := _digit_dates(values)):
        return digits
    # unsafe: a uint64 id past 2**53 (Avazu's) stopped the proposal, where its values are only looked at
    units = set(epoch_units(values.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)).tolist())
    if len(units) != 1 or -1 in units:
        return ""
    first, last = EPOCH_YEARS
    return EPOCH_TIME.format(unit=list(EPOCH_UNITS)[units.pop()], first=first, last=last)


def _digit_dates(values: pa.Array) -> str:
    """``DIGIT_DATES`` for integers or text all of which are dates of one form (``DIGIT_DATE_FORMS``), with a
    year of ``EPOCH_YEARS`` and a day its month has ("" otherwise): an hour or a day column proposed as a category
    (Avazu's ``hour``, 14102100) met values in serving that its training never held."""
    if is_text(values.type):
        if not pc.all(pc.match_substring_regex(values, r"^\d{8}$")).as_py():
            return ""
        values = values.cast(pa.int64())
    numbers = values.to_numpy(zero_copy_only=False).astype(np.int64)
    if not np.all((numbers >= 10**7) & (numbers < 10**8)):
        return ""
    pairs = [numbers // 10**6, numbers // 10**4 % 100, numbers // 100 % 100, numbers % 100]  # two digits each
    readings = {"YYYYMMDD": (pairs[0] * 100 + pairs[1], *pairs[2:], 0), "YYMMDDHH": (2000 + pairs[0], *pairs[1:])}
    first, last = EPOCH_YEARS
    for form, (year, month, day, hour) in readings.items():
        months = (year - 1970) * 12 + month - 1  # months since 1970-01, as datetime64[M] counts them
        starts = np.array(months, "datetime64[M]")
        days = ((starts + 1).astype("datetime64[D]") - starts.astype("datetime64[D]")).astype(np.int64)  # in month
        valid = (year >= first) & (year <= last) & (month >= 1) & (month <= 12) & (day >= 1) & (hour <= 23)
        if np.all(valid & (day <= days)):
            return DIGIT_DATES.format(form=form, example=DIGIT_DATE_FORMS[form])
    return ""


def _number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _infer_feature(table: pa.Table, name: str) -> tuple[Feature | None, str]:
    """(the feature proposed, "" or what to check in it), or (None, why the column is left out)."""
    if not name.isidentifier():
        return None, "not an identifier: rename the column (letters, digits, _)"
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):  # read as text when UTF-8
        try:
            column = column.cast(pa.large_string())
        except pa.ArrowInvalid:
            return None, "bytes that are not UTF-8 text"
    text = is_text(column.type)
    if not (text or is_number(column.type) or pa.types.is_boolean(column.type)):
        return None, f"type {column.type} is neither text nor a number"
    nulls = column.null_count
    if nulls == len(column):
        return None, "every value is null"
    distinct = pc.count_distinct(column).as_py()
    if distinct == 1:
        return None, "one value on every row: carries no information"
    whole = integer = pa.types.is_integer(column.type)
    if pa.types.is_floating(column.type):
        whole, integer = _whole_numbers(column)
    # integers too (a CSV's ids read as numbers, Avazu's as floats, were proposed as required numeric features);
    # epoch times are, each different, the time _time_values cautions of
    unique = distinct == len(column) - nulls and len(column) > 1
    if unique and (text or (whole and not _time_values(_distinct_values(column)))):
        return None, "a different value on every row: an id, not a feature"
    side = _side(table, name)
    optional = {"required": False} if nulls else {}
    if text or pa.types.is_boolean(column.type):
        return Feature(name, "categorical", side, buckets=buckets_for(distinct), **optional), ""
    values = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)  # a median: rounding is no harm
    tail = heavy_tail(values) if whole and distinct >= MIN_COUNT_VALUES else ""
    if integer and distinct <= MAX_CATEGORICAL_INTEGERS and not tail:
        return Feature(name, "categorical", side, buckets=buckets_for(distinct), **optional), ""
    if nulls:
        optional["default"] = float(np.nanmedian(values))
    if tail:
        return Feature(name, "numeric", side, transform=LOG1P, **optional), tail
    return Feature(name, "numeric", side, **optional), INTEGER_ID.format(distinct=distinct) if whole else ""


def heavy_tail(values: np.ndarray) -> str:
    """``HEAVY_TAIL``'s caution when ``values`` (whole numbers, NaN where null) are counts from 0 whose 99th
    percentile is at least ``HEAVY_TAIL_RATIO`` times their median (each plus 1), else ""."""
    present = values[~np.isnan(values)]
    if not present.size or present.min() < 0:
        return ""
    median, p99 = np.percentile(present, [50, 99])
    if (p99 + 1) < HEAVY_TAIL_RATIO * (median + 1):
        return ""
    return HEAVY_TAIL.format(p99=float(p99), median=float(median))


def _names_the_slot(table: pa.Table, name: str) -> bool:
    """Whether ``name`` and the log's ``position`` determine each other (as many value pairs as values of each)."""
    if "position" not in table.column_names:
        return False
    pairs = table.select([name, "position"])
    for column in range(2):  # dictionary-encoded values (pandas' category) are grouped as their values
        if pa.types.is_dictionary(pairs.schema.field(column).type):
            pairs = pairs.set_column(column, pairs.column_names[column], pairs.column(column).dictionary_decode())
    together = pairs.group_by([name, "position"]).aggregate([]).num_rows
    return together == pc.count_distinct(pairs.column(name)).as_py() == pc.count_distinct(pairs.column(1)).as_py()


def _whole_numbers(column: pa.ChunkedArray) -> tuple[bool, bool]:
    """Whether every non-null value of a float column is a whole number, and whether each is one a categorical
    feature takes as an integer (the service's rule, ``whole_numbers``: below 2**53; training refuses a float id
    past it, and one proposed categorical was refused by ``ctr train``). The first says an id as well past it."""
    values = column.drop_null().to_numpy(zero_copy_only=False)
    return bool(np.all(whole_floats(values))), bool(np.all(whole_numbers(values)))


def _side(table: pa.Table, name: str) -> str:
    """``context`` when ``name`` holds one value within each request, else ``candidate``."""
    if "request_id" not in table.column_names:
        return "candidate"
    per_request = table.select(["request_id", name]).group_by("request_id").aggregate([(name, "count_distinct")])
    return "context" if pc.max(per_request.column(f"{name}_count_distinct")).as_py() <= 1 else "candidate"


def spec_toml(proposal: Proposal, path: Path) -> str:
    """The proposed spec as TOML, headed by what was left out and why, and what to check."""
    header = [f"# Feature spec proposed by `ctr spec infer --logs {path_text(path)}`: check kinds, sides and buckets."]
    header += [_comment("left out", column, why) for column, why in proposal.skipped.items()]
    header += [_comment("check", column, why) for column, why in proposal.cautions.items()]
    return "\n".join(header) + "\n\n" + proposal.spec.to_toml()


def _comment(label: str, column: str, why: str) -> str:
    """A header line about ``column``: its name as Python writes it (quoted, a line break in it as ``\\n``), and a
    reason holding what no comment line may (a struct's field names in its type) written so too. A CSV header's
    ``"we\\nird"`` written raw ended the comment: ``ctr new --spec`` refused the file as not TOML, and a crafted
    name's next line (``[[feature]]``) was read as the spec's own."""
    return f"# {label}: {column!r}: {why if why.isprintable() else repr(why)}"
