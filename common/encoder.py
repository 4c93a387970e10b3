"""The feature encoder: raw feature columns -> the model's input tensors, shared by trainer and service.

One implementation, imported by both sides, so there is no training/serving skew (DESIGN.md §2).
It is torch-free numpy. Output, for ``B`` rows:

- ``categorical``: int64 ``(B, C)``, one column per categorical feature in spec order, each value the
  feature's stable-hash bucket plus the feature's offset into one shared embedding table of
  ``spec.total_buckets`` rows;
- ``numeric``: float32 ``(B, N)``, one column per numeric feature, ``(x - mean) / std`` with the
  fitted statistics, clipped to the training range; an absent or null value takes the feature's
  default (in raw units) first; a feature with a ``transform`` standardises ``log1p(x)`` (its statistics are
  of those), a value below the transform's domain refused (common/numeric_transform.py).

Columns are given by feature name. A column is either a sequence of ``B`` values (one per row) or a
scalar, which is broadcast to every row: that is how a request's context features join its candidates.
``None`` in a column means "absent" and takes an optional feature's default, as does NaN (how pandas
writes a gap); a required feature absent on any row is refused.

The words refusing a value are defined here once, for ``/v1/score``'s checks (service/score/features.py,
which check a request's values before they are batched) as for anyone encoding rows by hand (the README's
V2 route): the encoder checks the values it is given as the service does, with the same reason (a required
feature absent, a text longer than ``max_chars``, a fraction for a categorical feature, a number past
float32, a text or bytes for a numeric one), and reads a whole-number float
for a categorical feature as the integer it is (``whole_number``: a pandas integer column with gaps is
float64). Each value's type is the service's check, made before any value reaches here: a boolean, an object
or an array is refused by /v1/score wherever it is, while the encoder, given mixed columns, reads a boolean
among a numeric feature's numbers as 1 (``[True, 1.0]``) and hashes an object among a categorical feature's
texts as text (a boolean for a categorical feature, and a numeric feature's booleans with no number beside
them, it refuses).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.features import MAX_CATEGORY_CHARS, Feature, FeatureSpec, NumericStats
from common.hashing import SMALL_BATCH, UNGROUPED_TEXTS, bucketize, bucketize_texts, canonical_strings
from common.numeric_transform import in_domain, outside_domain, transformed
from common.plural import counted

logger = logging.getLogger(__name__)

DOMINANT_SHARE = 0.5  # one value with more than this share of a column's squared deviations dominates it
DOMINANT_MIN_VALUES = 100  # below, a few values may share the spread by chance

FLOAT32_LIMIT = float(np.finfo(np.float32).max)
MIN_STD = 1e-12  # a fitted std below this is a constant feature's (1.0 instead); a spec's is raised to it
# why a value cannot be encoded (FeatureError's reason; the service checks requests with the same words)
NOT_CATEGORICAL = "must be a string or an integer"
NOT_NUMERIC = "must be a number"
OUT_OF_RANGE = f"is out of range (|x| must be at most {FLOAT32_LIMIT:.3g})"
REQUIRED_MISSING = "is required but missing"
# every integer below this magnitude is a float that stands for it alone: the float 2**53 is also what 2**53 + 1
# reads as, so a whole float is taken as an integer only below it
EXACT_INTEGERS = 2**53
# A standardised value is clipped to this many standard deviations whatever its training range (a spec
# without one): a float32 value far from the training mean (3e38, or 1e20 over a small std) overflowed
# float32 to inf, and the network answered NaN (a score of null in a 200).
STANDARDISED_LIMIT = 1e6
_CLIPPED_LOCK = threading.Lock()
MEMO_ENTRIES = 1 << 17  # per categorical feature: raw values whose index the value path remembers
_ABSENT = object()  # a column the request does not give
_CATEGORICAL_TYPES = (str, int)  # a context scalar the value path takes (exact types: bool is not int)
_NUMERIC_TYPES = (int, float)
_MEMO_KEY_TYPES = frozenset({str, int, type(None)})
_REQUIRED_MEMO_KEY_TYPES = frozenset({str, int})  # a required feature's None is refused by the column path
_NUMBER_TYPES = frozenset({int, float, type(None)})
_NOT_NUMBERS = (bool, str, bytes)  # refused among a numeric feature's values (bytes: numpy reads b"1.5" as 1.5)
# The types of a categorical object column whose distinct values are found before they are made text: two equal
# values of these have one text (an int and a numpy int, a str and a numpy str), where 1 and np.float32(1.0) are
# equal but "1" and "1.0", and bytes are made text by numpy alone (b"ab" is "ab")
_DISTINCT_TEXT_TYPES = frozenset({str, int, np.str_, *(np.dtype(code).type for code in np.typecodes["AllInteger"])})


def too_long(max_chars: int) -> str:
    """Why a text value is refused: longer than ``max_chars`` characters (the service's CTR_MAX_STRING_CHARS;
    a 2 MB id took memory by the row count in the encoder)."""
    return f"is longer than {max_chars} characters"


def whole_number(value: Any) -> int | None:
    """A float without a fraction given for a categorical feature (JSON's ``21.0`` or ``2.1e1``, a pandas
    integer column with gaps), as the integer it is: JSON does not tell it from ``21``, and the trainer reads a
    log's whole-number floats so (training/logs/column_arrays.py), so each encodes it as ``21``; None for anything
    else."""
    if type(value) is float and value.is_integer() and abs(value) < EXACT_INTEGERS:
        return int(value)
    return None


def whole_floats(values: np.ndarray) -> np.ndarray:
    """Where each float of ``values`` is a finite whole number, of any size (``whole_numbers`` bounds them)."""
    return np.isfinite(values) & (values == np.floor(values))


def whole_numbers(values: np.ndarray) -> np.ndarray:
    """Where ``whole_number`` takes each float of ``values`` (a log's float64 categorical column, checked before
    training): the same rule at numpy's speed, so that a log's id the service would refuse in a request, one
    past 2**53 already rounded when pandas wrote it as a float, is refused before it trains a bucket."""
    return whole_floats(values) & (np.abs(values) < EXACT_INTEGERS)


def not_categorical(value: Any) -> str:
    """Why ``value`` (neither a string, an integer nor a ``whole_number``) is refused for a categorical feature."""
    reason = NOT_CATEGORICAL
    if type(value) is float and value.is_integer():  # past EXACT_INTEGERS: 2**64 is read as a float too
        # 2**64 is a float to the JSON reader, 2**64 - 1 an integer: name what decided it, in the shortest digits
        # that read back as the float (%g showed 2**53 + 2 as 9.0072e+15, the digits that matter cut off)
        reason += (
            f"; {value!r} was read as a float (a JSON integer past 64 bits, or written with a fraction or an "
            "exponent), whole only up to 2**53, where a float loses its last digits: send it as a string"
        )
    elif type(value) is float:
        reason += f", not {value!r}"
    return reason


class FeatureError(ValueError):
    """A feature's value cannot be encoded; ``feature`` names it."""

    def __init__(self, feature: str, message: str) -> None:
        super().__init__(f"feature {feature!r}: {message}")
        self.feature = feature
        self.reason = message


@dataclass(frozen=True)
class EncodedFeatures:
    categorical: np.ndarray  # (B, C) int64, offsets applied
    numeric: np.ndarray  # (B, N) float32, standardised
    clipped: np.ndarray | None = None  # (B, N) bool: where a value was clipped to the training range

    def __len__(self) -> int:
        return self.categorical.shape[0]

    def as_inputs(self) -> dict[str, np.ndarray]:
        """The model's input tensors by ONNX input name."""
        return {"categorical": self.categorical, "numeric": self.numeric}

    def take(self, rows: np.ndarray | slice) -> EncodedFeatures:
        return EncodedFeatures(self.categorical[rows], self.numeric[rows])


def fit_statistics(
    spec: FeatureSpec, columns: Mapping[str, Any], also_encoded: Mapping[str, Any] | None = None
) -> FeatureSpec:
    """The spec with numeric means and standard deviations fitted on ``columns`` (training logs), and each
    feature's training range: of ``columns`` and of ``also_encoded``, values the trainer encodes beyond
    those it fits on (a two-tower model's whole catalog beside its displayed items), so that clipping to
    the range leaves every value training encoded as it was."""
    stats: dict[str, NumericStats] = {}
    for feature in spec.numeric:
        column = columns.get(feature.name)
        if column is None:  # never logged: every value is the default, which encodes as 0, its range too
            stats[feature.name] = unlogged_stats(feature)
            continue
        values = numeric_values(feature, column, len(column))
        mean = float(values.mean()) if values.size else encoded_default(feature)
        std = float(values.std()) if values.size else 1.0
        more = (also_encoded or {}).get(feature.name)
        seen = values if more is None else np.concatenate([values, numeric_values(feature, more, len(more))])
        if not seen.size:  # a column of nulls: every value the default, as if never logged
            stats[feature.name] = unlogged_stats(feature)
            continue
        low, high = training_range(feature, float(seen.min()), float(seen.max()))
        stats[feature.name] = NumericStats(mean=mean, std=std if std > MIN_STD else 1.0, low=low, high=high)
        _warn_if_one_of_values_dominates(feature.name, values, mean, std)
    return spec.with_stats(stats)


def encoded_default(feature: Feature) -> float:
    """A numeric feature's default as its values are standardised: through its transform, if any."""
    return float(transformed(feature.transform, float(feature.default)))


def unlogged_stats(feature: Feature) -> NumericStats:
    """A numeric feature no log gave a value of: training saw its default alone (encoded as 0), so that is
    its whole range, and a served value of it is clipped to the default and counted (the model never
    learnt what the feature does: a version "without ranges" it is not)."""
    default = encoded_default(feature)
    return NumericStats(mean=default, std=1.0, low=default, high=default)


def training_range(feature: Feature, smallest: float, largest: float) -> tuple[float, float]:
    """The range a numeric feature's values are clipped to: the logged values' and the feature's default (an
    absent value takes it, in training too, so every value training encoded is inside and clipping leaves
    training as it was; a default outside the logged values, a 0 for "unknown", keeps its own encoding).
    ``smallest`` and ``largest`` are of the values as standardised: transformed, for a feature with a transform."""
    default = encoded_default(feature)
    return min(smallest, default), max(largest, default)


def _warn_if_one_of_values_dominates(name: str, values: np.ndarray, mean: float, std: float) -> None:
    if values.size:
        squared = (values.astype(np.float64) - mean) ** 2
        farthest = float(values[int(np.argmax(squared))])
        warn_if_one_value_dominates(name, int(values.size), farthest, float(squared.sum()), mean, std)


def warn_if_one_value_dominates(name: str, count: int, farthest: float, spread: float, mean: float, std: float) -> None:
    """A warning when one value holds most of a column's spread: its std is then that value's, and every
    other value standardises to about the same number (a price of 3e38 among prices near 40 made every real
    price -0.008: the feature carried nothing, in training and in serving, without a word). Needs only the
    ``count`` values' ``mean``, ``std``, their ``spread`` (sum of squared deviations from the mean) and the
    value ``farthest`` from the mean, so the streamed trainer's merged moments say it as the in-memory one."""
    if count < DOMINANT_MIN_VALUES:
        return
    worst = (farthest - mean) ** 2
    if worst > DOMINANT_SHARE * spread:
        logger.warning(
            "numeric feature %r: one value of %d, %g, holds %.0f%% of its spread (mean %g, std %g), so the other "
            "values standardise to about the same number and the feature carries little: clip or drop such a value "
            "(a sentinel like 1e30 or FLT_MAX?) before training",
            name,
            count,
            farthest,
            100 * worst / spread,
            mean,
            std,
        )


class FeatureEncoder:
    """Encodes raw columns with a fitted spec; cheap to call per request. A text value longer than
    ``max_chars`` is refused (the service builds its encoders with its own CTR_MAX_STRING_CHARS)."""

    def __init__(self, spec: FeatureSpec, max_chars: int = MAX_CATEGORY_CHARS) -> None:
        if not spec.is_fitted:
            missing = [f.name for f in spec.numeric if f.name not in spec.stats]
            raise ValueError(f"feature spec is not fitted: no statistics for {missing}")
        self.spec = spec
        self.max_chars = max_chars
        self._names = frozenset(f.name for f in spec.features)
        self._categorical, self._numeric = spec.categorical, spec.numeric  # derived tuples, built once
        self.numeric_names = tuple(f.name for f in spec.numeric)  # the order of the numeric columns
        offsets = np.cumsum([0] + [f.buckets for f in spec.categorical])[:-1]
        self._offsets = {f.name: int(o) for f, o in zip(spec.categorical, offsets, strict=True)}
        self._defaults = tuple(encoded_default(f) for f in spec.numeric)  # an absent column's value, standardised
        self._means = np.array([spec.stats[f.name].mean for f in spec.numeric], dtype=np.float64)
        stds = np.array([spec.stats[f.name].std for f in spec.numeric], dtype=np.float64)
        self._stds = np.maximum(stds, MIN_STD)  # a hand-written spec's tinier std: clipped values either way
        self._low, self._high = self._standardised_range(spec)
        self._memos = tuple(_BucketMemo(f, self._offsets[f.name], max_chars) for f in spec.categorical)
        # numeric feature -> values clipped to its range, over every call; the service points this at the
        # version's metrics counter (service/models/manager.py), so an ad server's unit mistake shows there
        self.clipped: Counter[str] = Counter()

    def _standardised_range(self, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
        """Each numeric feature's (low, high) in standardised units: its training range, computed as a value
        is standardised (so a training value at the edge is not clipped), within ±``STANDARDISED_LIMIT``."""
        stats = [spec.stats[f.name] for f in spec.numeric]
        low = np.array([-np.inf if s.low is None else s.low for s in stats], dtype=np.float64)
        high = np.array([np.inf if s.high is None else s.high for s in stats], dtype=np.float64)
        low, high = (low - self._means) / self._stds, (high - self._means) / self._stds
        limit = STANDARDISED_LIMIT
        return np.clip(low, -limit, limit), np.clip(high, -limit, limit)

    def encode(self, columns: Mapping[str, Any], n_rows: int, clipped: Counter | None = None) -> EncodedFeatures:
        """Encode ``n_rows`` rows; raises FeatureError naming the first bad feature. The values clipped to
        the training range are counted, one per row, in ``clipped`` if given (a request the service encodes
        before queueing it counts them once its batchers took it: ``add_clipped``), else in the encoder's own
        ``clipped``.

        Columns of plain Python values (scalars and lists, as a service batch gives them) take the
        value path: each categorical value's bucket is looked up in a per-feature memo (ids repeat
        across requests; a value not seen yet is hashed by the column path's own routine), numeric
        values go to numpy in one call per column. Anything else, and every column the value path does
        not take, goes column-wise through numpy. Both give the same tensors (tests/common/test_encoder.py
        checks it property by property).
        """
        unknown = [name for name in columns if name not in self._names]
        if unknown:
            raise FeatureError(unknown[0], "is not a feature of this model")
        encoded = self._encode_values(columns, n_rows)
        if encoded is None:
            encoded = self._encode_columns(columns, n_rows)
        differs = encoded.clipped
        if differs is not None and differs.any():
            counts = self.clipped_counts(differs)
            if clipped is None:
                self.add_clipped(counts)
            else:
                clipped.update(counts)
        return encoded

    def clipped_counts(self, differs: np.ndarray) -> dict[str, int]:
        """Numeric feature -> how many rows of ``differs`` ((B, N) bool: where a clip changed a value) it
        was clipped in."""
        return dict(zip(self.numeric_names, np.count_nonzero(differs, axis=0).tolist(), strict=True))

    def add_clipped(self, counts: Mapping[str, int]) -> None:
        """Counts of clipped values added to ``clipped`` (batch threads of one version share its counter)."""
        with _CLIPPED_LOCK:
            for name, n in counts.items():
                if n:
                    self.clipped[name] += n

    def _encode_values(self, columns: Mapping[str, Any], n_rows: int) -> EncodedFeatures | None:
        """The value path; None when a column holds anything but plain valid values."""
        categorical = np.empty((n_rows, len(self._memos)), dtype=np.int64)
        for j, memo in enumerate(self._memos):
            column = columns.get(memo.feature.name, _ABSENT)
            if type(column) is list:
                if len(column) != n_rows:
                    return None
                codes = memo.codes(column)
            elif column is _ABSENT:
                if memo.feature.required:
                    return None
                codes = memo.codes([None])
            elif column is None or type(column) in _CATEGORICAL_TYPES:
                codes = memo.codes([column])  # a context scalar: looked up once, broadcast below
            else:
                return None
            if codes is None:
                return None
            categorical[:, j] = codes
        numeric = np.empty((n_rows, len(self._numeric)), dtype=np.float64)
        for j, feature in enumerate(self._numeric):
            column = columns.get(feature.name, _ABSENT)
            if type(column) is list:
                if len(column) != n_rows:
                    return None
                values = _plain_numbers(column, feature)
            elif column is _ABSENT:
                if feature.required:
                    return None
                values = self._defaults[j]
            elif column is None or type(column) in _NUMERIC_TYPES:
                values = _plain_numbers([column], feature)
            else:
                return None
            if values is None:
                return None
            numeric[:, j] = values
        return EncodedFeatures(categorical, *self._standardised(numeric))

    def _encode_columns(self, columns: Mapping[str, Any], n_rows: int) -> EncodedFeatures:
        categorical = np.empty((n_rows, len(self._categorical)), dtype=np.int64)
        for j, feature in enumerate(self._categorical):
            column = self._column(feature, columns)
            buckets = _categorical_buckets(feature, column, n_rows, self.max_chars)
            categorical[:, j] = buckets + self._offsets[feature.name]
        numeric = np.empty((n_rows, len(self._numeric)), dtype=np.float64)
        for j, feature in enumerate(self._numeric):
            numeric[:, j] = numeric_values(feature, self._column(feature, columns), n_rows, fill=True)
        return EncodedFeatures(categorical, *self._standardised(numeric))

    @property
    def standardised_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Each numeric feature's standardised training range (low, high; ``_standardised_range``), the bounds
        its values are clipped to: read by V2 infer, whose clients send standardised tensors, so that both
        paths clip at the same numbers."""
        return self._low, self._high

    def _standardised(self, numeric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((value - mean) / std as float32, clipped to the training range (``_standardised_range``; float64
        holds any accepted value over a std of at least ``MIN_STD``; two bounds cost half of np.clip's call
        per batch), where it was clipped: one comparison, a third of what testing below and above cost)."""
        z = (numeric - self._means) / self._stds
        bounded = np.maximum(z, self._low)
        np.minimum(bounded, self._high, out=bounded)
        return bounded.astype(np.float32), bounded != z

    @staticmethod
    def _column(feature: Feature, columns: Mapping[str, Any]) -> Any:
        if feature.name in columns:
            return columns[feature.name]
        if feature.required:
            raise FeatureError(feature.name, REQUIRED_MISSING)
        return None


class _BucketMemo:
    """One categorical feature's encoded index (bucket + offset) per raw value, remembered.

    Served ids repeat from request to request, so looking a value up (a dict lookup in C, for a whole
    column at once) replaces hashing it. A value not seen yet is hashed by ``_categorical_buckets``, the
    column path's own routine, so both paths give the same index by construction. At most
    ``MEMO_ENTRIES`` values are kept; past that the memo starts afresh (a flood of new ids costs
    hashing, never unbounded memory). Lookups and inserts are single dict operations: safe from the
    batch threads of several model instances at once.
    """

    __slots__ = ("feature", "key_types", "max_chars", "offset", "table")

    def __init__(self, feature: Feature, offset: int, max_chars: int) -> None:
        self.feature = feature
        self.offset = offset
        self.max_chars = max_chars  # a value is remembered once hashed, so only after this check passed
        self.key_types = _REQUIRED_MEMO_KEY_TYPES if feature.required else _MEMO_KEY_TYPES
        self.table: dict[Any, int] = {}

    def codes(self, values: list[Any]) -> list[int] | None:
        """Each value's index; None if a value is not a string, an integer or (for an optional feature) None:
        bool and float are not (they would find an integer's entry, since ``1.0 == True == 1`` as dict keys),
        and the column path refuses a required feature's None, naming it."""
        if not self.key_types.issuperset(map(type, values)):
            return None
        table = self.table
        try:
            return list(map(table.__getitem__, values))
        except KeyError:
            pass
        found: dict[Any, int] = {}  # this column's values: taken from the memo before it changes
        new = []
        for value in dict.fromkeys(values):
            code = table.get(value)
            if code is None:
                new.append(value)
            else:
                found[value] = code
        hashed = (_categorical_buckets(self.feature, new, len(new), self.max_chars) + self.offset).tolist()
        found.update(zip(new, hashed, strict=True))
        if len(table) + len(new) > MEMO_ENTRIES:
            table.clear()
        table.update(zip(new, hashed, strict=True))
        return list(map(found.__getitem__, values))


def _plain_numbers(values: list[Any], feature: Feature) -> np.ndarray | None:
    """Float64 values of a list of ints, floats and Nones, absent (None, NaN) as the feature's default, through
    the feature's transform; None when a value is of another type or out of range (of float32, or of the
    transform's domain), or absent for a required feature (the column path then names it)."""
    if not _NUMBER_TYPES.issuperset(map(type, values)):
        return None
    try:
        floats = np.array(values, dtype=np.float64)  # None -> NaN
    except OverflowError:  # an int past float64's range
        return None
    absent = np.isnan(floats)
    if (np.abs(floats) > FLOAT32_LIMIT).any():  # NaN compares False; inf and 1e39 are refused
        return None
    if absent.any():
        if feature.required:
            return None
        floats[absent] = feature.default
    if feature.transform is None:  # the common case: one attribute read
        return floats
    if not in_domain(feature.transform, floats).all():
        return None
    return transformed(feature.transform, floats)


def _broadcast(column: Any, n_rows: int, feature: Feature) -> np.ndarray:
    if column is None or np.isscalar(column):
        return np.full(n_rows, column, dtype=object if column is None or isinstance(column, str) else None)
    array = np.asarray(column)
    if array.ndim != 1 or array.shape[0] != n_rows:
        raise FeatureError(
            feature.name, f"has {counted(array.shape[0] if array.ndim else 1, 'value')} for {counted(n_rows, 'row')}"
        )
    return array


def _categorical_buckets(feature: Feature, column: Any, n_rows: int, max_chars: int) -> np.ndarray:
    if isinstance(column, str | int) and not isinstance(column, bool):  # context scalar: hash once
        if isinstance(column, str) and len(column) > max_chars:
            raise FeatureError(feature.name, too_long(max_chars))
        return np.full(n_rows, bucketize([column], feature.buckets)[0], dtype=np.int64)
    if type(column) is list:  # Python ints stay ints: numpy would make [-1, 2**63] floats
        column = np.array(column, dtype=object) if column else np.empty(0, dtype=object)
    values = _broadcast(column, n_rows, feature)
    if values.dtype.kind == "f":  # whole numbers and gaps (NaN), as pandas writes an integer column with gaps
        values = values.astype(object)
    rows = None  # where values become the distinct ones (_distinct): each row's index among them
    if values.dtype.kind == "O":
        items = values.tolist()
        if any(v is None or isinstance(v, bool | float) for v in items):
            items = [_category(feature, v) for v in items]
            values = np.array(items, dtype=object)
        if len(items) > SMALL_BATCH and _DISTINCT_TEXT_TYPES.issuperset(map(type, items)):
            distinct, rows = _distinct(items)
            if len(distinct) > UNGROUPED_TEXTS:
                return _distinct_buckets(feature, distinct, max_chars)[rows]
            values = np.array(distinct, dtype=object)
    elif values.dtype.kind not in "USiu":
        raise FeatureError(feature.name, NOT_CATEGORICAL)
    text = values.astype(str) if values.dtype.kind in "OS" else values
    if text.dtype.kind == "U" and text.dtype.itemsize // 4 > max_chars:  # the longest value's length, in O(1)
        raise FeatureError(feature.name, too_long(max_chars))
    strings = canonical_strings(text)
    if rows is not None:
        return bucketize(strings, feature.buckets)[rows]
    if strings.size > SMALL_BATCH:  # hash each distinct value once
        uniques, inverse = np.unique(strings, return_inverse=True)
        return bucketize(uniques, feature.buckets)[inverse.reshape(-1)]
    return bucketize(strings, feature.buckets)


def _distinct(items: list[Any]) -> tuple[list[Any], np.ndarray | slice]:
    """The distinct values of ``items`` (values of ``_DISTINCT_TEXT_TYPES``), and the index of each item's among
    them, for the distinct values alone to be made text and hashed (past ``UNGROUPED_TEXTS`` of them, in groups of
    like length: ``_distinct_buckets``). Made text by numpy as any other column, every row took rows x the longest
    value x 4 bytes: one 1,024-character site among 500,000 rows of short ones took 5.9 GB and 29 s, and np.unique
    then sorted that array, where the distinct values take 12 MB and 0.3 s."""
    distinct = list(dict.fromkeys(items))  # equal values of these types have one text: 42 and np.int64(42) are "42"
    if len(distinct) == len(items):  # no value repeats: already in the rows' order
        return distinct, slice(None)
    index_of = dict(zip(distinct, range(len(distinct)), strict=True))
    return distinct, np.fromiter(map(index_of.__getitem__, items), dtype=np.intp, count=len(items))


def _distinct_buckets(feature: Feature, distinct: list[Any], max_chars: int) -> np.ndarray:
    """The bucket of each of a column's distinct values (``_distinct``), hashed as the text numpy makes of it (its
    ``str()``, trailing NULs dropped as a numpy array drops them) but in groups of like length (``bucketize_texts``;
    made numpy text together, each was as wide as the longest). A text is refused past ``max_chars`` as the array's
    width refused it: its trailing NULs counted, an empty text one character wide."""
    texts = list(map(str, distinct))
    if max(max(map(len, texts), default=0), 1) > max_chars:
        raise FeatureError(feature.name, too_long(max_chars))
    return bucketize_texts(texts, feature.buckets)


def _category(feature: Feature, value: Any) -> Any:
    """A categorical value as it is hashed: an absent one (None, NaN) the default (refused for a required
    feature), a ``whole_number`` float its integer; FeatureError for a boolean or a fraction."""
    if value is None or (isinstance(value, float) and value != value):
        if feature.required:
            raise FeatureError(feature.name, REQUIRED_MISSING)
        return feature.default
    if isinstance(value, bool):
        raise FeatureError(feature.name, NOT_CATEGORICAL)
    if isinstance(value, float):
        whole = whole_number(float(value))  # a numpy float64 too
        if whole is None:
            raise FeatureError(feature.name, not_categorical(float(value)))
        return whole
    return value


def _holds_no_number(values: list[Any]) -> bool:
    """Whether a numeric feature's object column holds a boolean, a text or bytes, which numpy would read as
    numbers (True as 1, "1.5" and b"1.5" as 1.5) where a request's are refused. A column of plain numbers, the
    common one, is told by its types alone: a quarter of the time of looking at each value."""
    return not _NUMBER_TYPES.issuperset(map(type, values)) and any(isinstance(v, _NOT_NUMBERS) for v in values)


def numeric_values(feature: Feature, column: Any, n_rows: int, fill: bool = False) -> np.ndarray:
    """Float64 values, through the feature's transform (the values its statistics are fitted on and it
    standardises; one below the transform's domain refused); ``fill`` replaces absent values by the default
    (refused for a required feature), else they are dropped."""
    if isinstance(column, (bool, str, bytes)):
        raise FeatureError(feature.name, NOT_NUMERIC)
    values = _broadcast(column, n_rows, feature)
    if values.dtype.kind in "bUS" or (values.dtype.kind == "O" and _holds_no_number(values.tolist())):
        raise FeatureError(feature.name, NOT_NUMERIC)
    if values.dtype.kind == "O":
        values = np.where(np.equal(values, None), np.nan, values)
    try:
        floats = values.astype(np.float64)
    except (TypeError, ValueError):
        raise FeatureError(feature.name, NOT_NUMERIC) from None
    absent = np.isnan(floats)
    if np.isinf(floats).any() or (np.abs(floats[~absent]) > FLOAT32_LIMIT).any():
        raise FeatureError(feature.name, OUT_OF_RANGE)
    if feature.transform is not None and not in_domain(feature.transform, floats[~absent]).all():
        raise FeatureError(feature.name, outside_domain(feature.transform))
    if fill:
        if feature.required and absent.any():
            raise FeatureError(feature.name, REQUIRED_MISSING)
        return transformed(feature.transform, np.where(absent, float(feature.default), floats))
    return transformed(feature.transform, floats[~absent])
