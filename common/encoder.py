"""The feature encoder: raw feature columns -> the model's input tensors, shared by trainer and service.

One implementation, imported by both sides, so there is no training/serving skew (DESIGN.md §2).
It is torch-free numpy. Output, for ``B`` rows:

- ``categorical``: int64 ``(B, C)``, one column per categorical feature in spec order, each value the
  feature's stable-hash bucket plus the feature's offset into one shared embedding table of
  ``spec.total_buckets`` rows;
- ``numeric``: float32 ``(B, N)``, one column per numeric feature, ``(x - mean) / std`` with the
  fitted statistics; an absent or null value takes the feature's default (in raw units) first.

Columns are given by feature name. A column is either a sequence of ``B`` values (one per row) or a
scalar, which is broadcast to every row: that is how a request's context features join its candidates.
``None`` in a column means "absent" and takes the default, as does NaN in a numeric column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.features import Feature, FeatureSpec, NumericStats
from common.hashing import _fnv1a64_one, bucketize, canonical_strings

FLOAT32_LIMIT = float(np.finfo(np.float32).max)
# why a value cannot be encoded (FeatureError's reason; the service checks requests with the same words)
NOT_CATEGORICAL = "must be a string or an integer"
NOT_NUMERIC = "must be a number"
OUT_OF_RANGE = f"is out of range (|x| must be at most {FLOAT32_LIMIT:.3g})"
SMALL_BATCH_ROWS = 64  # up to this many rows, plain values are encoded one by one (see encode)
_ABSENT = object()  # a column the request does not give


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

    def __len__(self) -> int:
        return self.categorical.shape[0]

    def as_inputs(self) -> dict[str, np.ndarray]:
        """The model's input tensors by ONNX input name."""
        return {"categorical": self.categorical, "numeric": self.numeric}

    def take(self, rows: np.ndarray | slice) -> EncodedFeatures:
        return EncodedFeatures(self.categorical[rows], self.numeric[rows])


def fit_statistics(spec: FeatureSpec, columns: Mapping[str, Any]) -> FeatureSpec:
    """The spec with numeric means and standard deviations fitted on ``columns`` (training logs)."""
    stats: dict[str, NumericStats] = {}
    for feature in spec.numeric:
        column = columns.get(feature.name)
        if column is None:  # never logged: every value is the default, which encodes as 0
            stats[feature.name] = NumericStats(mean=float(feature.default), std=1.0)
            continue
        values = _numeric_values(feature, column, len(column))
        mean = float(values.mean()) if values.size else float(feature.default)
        std = float(values.std()) if values.size else 1.0
        stats[feature.name] = NumericStats(mean=mean, std=std if std > 1e-12 else 1.0)
    return spec.with_stats(stats)


class FeatureEncoder:
    """Encodes raw columns with a fitted spec; cheap to call per request."""

    def __init__(self, spec: FeatureSpec) -> None:
        if not spec.is_fitted:
            missing = [f.name for f in spec.numeric if f.name not in spec.stats]
            raise ValueError(f"feature spec is not fitted: no statistics for {missing}")
        self.spec = spec
        self._names = frozenset(f.name for f in spec.features)
        self._categorical, self._numeric = spec.categorical, spec.numeric  # derived tuples, built once
        offsets = np.cumsum([0] + [f.buckets for f in spec.categorical])[:-1]
        self._offsets = {f.name: int(o) for f, o in zip(spec.categorical, offsets, strict=True)}
        self._means = np.array([spec.stats[f.name].mean for f in spec.numeric], dtype=np.float64)
        self._stds = np.array([spec.stats[f.name].std for f in spec.numeric], dtype=np.float64)
        self._mean_list, self._std_list = self._means.tolist(), self._stds.tolist()

    def encode(self, columns: Mapping[str, Any], n_rows: int) -> EncodedFeatures:
        """Encode ``n_rows`` rows; raises FeatureError naming the first bad feature.

        Up to ``SMALL_BATCH_ROWS`` rows of plain Python values (a service batch) are encoded value by
        value, which costs a fraction of numpy's per-call overhead there; anything else, and every
        value the small path does not take, goes column-wise through numpy. Both give the same tensors
        (tests/common/test_encoder.py checks it property by property).
        """
        unknown = [name for name in columns if name not in self._names]
        if unknown:
            raise FeatureError(unknown[0], "is not a feature of this model")
        if n_rows <= SMALL_BATCH_ROWS:
            encoded = self._encode_values(columns, n_rows)
            if encoded is not None:
                return encoded
        return self._encode_columns(columns, n_rows)

    def _encode_values(self, columns: Mapping[str, Any], n_rows: int) -> EncodedFeatures | None:
        """The value-by-value path; None when a column holds anything but plain valid values."""
        categorical: list[list[int]] = []
        for feature in self._categorical:
            values = _plain_column(columns.get(feature.name, _ABSENT), n_rows, feature)
            if values is None:
                return None
            default, buckets, offset = feature.default, feature.buckets, self._offsets[feature.name]
            hashed = []
            for value in values:
                kind = type(value)
                if kind is str:
                    if value.endswith("\x00"):  # numpy's strings drop trailing NULs: leave it to numpy
                        return None
                    text = value
                elif kind is int:
                    text = str(value)
                elif value is None:
                    text = default
                else:
                    return None
                hashed.append(_fnv1a64_one(text) % buckets + offset)
            categorical.append(hashed)
        numeric: list[list[float]] = []
        for feature, mean, std in zip(self._numeric, self._mean_list, self._std_list, strict=True):
            values = _plain_column(columns.get(feature.name, _ABSENT), n_rows, feature)
            if values is None:
                return None
            default = float(feature.default)
            scaled = []
            for value in values:
                kind = type(value)
                if kind is float or kind is int:
                    if not -FLOAT32_LIMIT <= value <= FLOAT32_LIMIT:
                        if value == value:  # out of range (inf included): the column path names it
                            return None
                        value = default  # NaN is absent
                elif value is None:
                    value = default
                else:
                    return None
                scaled.append((float(value) - mean) / std)
            numeric.append(scaled)
        return EncodedFeatures(
            np.array(categorical, dtype=np.int64).reshape(len(categorical), n_rows).T.copy(),
            np.array(numeric, dtype=np.float64).reshape(len(numeric), n_rows).T.astype(np.float32),
        )

    def _encode_columns(self, columns: Mapping[str, Any], n_rows: int) -> EncodedFeatures:
        categorical = np.empty((n_rows, len(self._categorical)), dtype=np.int64)
        for j, feature in enumerate(self._categorical):
            column = self._column(feature, columns)
            categorical[:, j] = _categorical_buckets(feature, column, n_rows) + self._offsets[feature.name]
        numeric = np.empty((n_rows, len(self._numeric)), dtype=np.float64)
        for j, feature in enumerate(self._numeric):
            numeric[:, j] = _numeric_values(feature, self._column(feature, columns), n_rows, fill=True)
        standardised = ((numeric - self._means) / self._stds).astype(np.float32)
        return EncodedFeatures(categorical, standardised)

    @staticmethod
    def _column(feature: Feature, columns: Mapping[str, Any]) -> Any:
        if feature.name in columns:
            return columns[feature.name]
        if feature.required:
            raise FeatureError(feature.name, "is required but missing")
        return None


def _plain_column(column: Any, n_rows: int, feature: Feature) -> list[Any] | tuple[Any, ...] | None:
    """A column as ``n_rows`` Python values for the value-by-value path, or None when it is not a
    scalar or a list of the right length (the column path then encodes it, or names what is wrong)."""
    if column is _ABSENT:
        if feature.required:
            return None
        return (None,) * n_rows
    if type(column) is list:
        return column if len(column) == n_rows else None
    if column is None or type(column) in (str, int, float):
        return (column,) * n_rows
    return None


def _broadcast(column: Any, n_rows: int, feature: Feature) -> np.ndarray:
    if column is None or np.isscalar(column):
        return np.full(n_rows, column, dtype=object if column is None or isinstance(column, str) else None)
    array = np.asarray(column)
    if array.ndim != 1 or array.shape[0] != n_rows:
        raise FeatureError(feature.name, f"has {array.shape[0] if array.ndim else 1} values for {n_rows} rows")
    return array


def _categorical_buckets(feature: Feature, column: Any, n_rows: int) -> np.ndarray:
    if isinstance(column, str | int) and not isinstance(column, bool):  # context scalar: hash once
        return np.full(n_rows, bucketize([column], feature.buckets)[0], dtype=np.int64)
    if type(column) is list:  # Python ints stay ints: numpy would make [-1, 2**63] floats
        column = np.array(column, dtype=object) if column else np.empty(0, dtype=object)
    values = _broadcast(column, n_rows, feature)
    if values.dtype.kind == "O":
        absent = np.equal(values, None)
        if absent.any():
            values = values.copy()
            values[absent] = feature.default
        if any(isinstance(v, bool | float) for v in values.tolist()):
            raise FeatureError(feature.name, NOT_CATEGORICAL)
    elif values.dtype.kind not in "USiu":
        raise FeatureError(feature.name, NOT_CATEGORICAL)
    strings = canonical_strings(values.astype(str) if values.dtype.kind in "OS" else values)
    if strings.size > 64:  # hash each distinct value once
        uniques, inverse = np.unique(strings, return_inverse=True)
        return bucketize(uniques, feature.buckets)[inverse.reshape(-1)]
    return bucketize(strings, feature.buckets)


def _numeric_values(feature: Feature, column: Any, n_rows: int, fill: bool = False) -> np.ndarray:
    """Float64 values; ``fill`` replaces absent values by the default, else they are dropped."""
    if isinstance(column, (bool, str)):
        raise FeatureError(feature.name, NOT_NUMERIC)
    values = _broadcast(column, n_rows, feature)
    if values.dtype.kind in "bUS" or (
        values.dtype.kind == "O" and any(isinstance(v, bool | str) for v in values.tolist())
    ):
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
    if fill:
        return np.where(absent, float(feature.default), floats)
    return floats[~absent]
