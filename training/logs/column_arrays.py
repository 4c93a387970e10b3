"""A log's columns as the numpy arrays the encoder takes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from common.features import FeatureSpec
from training.logs.arrow_types import is_text


def column_array(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: strings (and UTF-8 bytes) as a unicode array, numbers as they are (decimals as
    floats), booleans as 0/1 integers (a request sends them so: the service refuses JSON booleans), nulls
    as None (NaN among floats)."""
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int64())
    elif pa.types.is_decimal(column.type):
        column = column.cast(pa.float64())
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        column = column.cast(pa.large_string())  # checked UTF-8 (check_features)
    if pa.types.is_integer(column.type) and column.null_count:
        return np.array(column.to_pylist(), dtype=object)  # ints and None: as floats, 3 would be a category 3.0
    if is_text(column.type):
        return column.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(column.type):
        return column.to_numpy(zero_copy_only=False).astype(np.float64)
    return column.to_numpy(zero_copy_only=False)


def feature_columns(table: pa.Table, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The spec's features present in ``table`` as numpy columns (absent optional ones are left out); a
    categorical feature's floats (integral: ``check_features``) as integers, NaN as None."""
    columns = {f.name: column_array(table, f.name) for f in spec.features if f.name in table.column_names}
    for feature in spec.categorical:
        values = columns.get(feature.name)
        if values is not None and values.dtype.kind == "f":
            columns[feature.name] = np.array([None if v != v else int(v) for v in values.tolist()], dtype=object)
    return columns
