"""The feature values of a log checked as the service checks a request's: refused naming the feature and
its first wrong row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.encoder import EXACT_INTEGERS, FLOAT32_LIMIT, whole_floats, whole_numbers
from common.features import MAX_CATEGORY_CHARS, FeatureSpec
from common.numeric_transform import in_domain, outside_domain
from common.plural import counted, the_first
from training.logs.arrow_types import is_number, is_text
from training.logs.cell_values import is_utf8, reads_as_number
from training.logs.row_words import OWN_TABLE, FileRows
from training.logs.wrong_rows import wrong_rows


def check_features(table: pa.Table, spec: FeatureSpec, source: str, rows: FileRows = OWN_TABLE) -> None:
    """ValueError, naming the feature and its first wrong row, unless every value of the spec's features
    in ``table`` is one the service would take in a request: a required feature present (not null, not
    NaN), a numeric feature's value a finite number within float32, a categorical one's a string or an
    integer (floats with integral values, how pandas writes integers with gaps, are read as integers where the
    service reads a request's so: ``whole_numbers``). A row is named where it lies in its file (``rows``)."""
    for feature in spec.features:
        if feature.name not in table.column_names:
            continue
        column = table.column(feature.name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        absent = pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
        if feature.required and absent.any():
            missing = int(absent.sum())
            raise ValueError(
                f"impression log {source}: required feature {feature.name!r} is missing on "
                f"{counted(missing, 'row')} ({the_first(missing)}{rows.named(int(np.flatnonzero(absent)[0]))}): fill "
                "them in, or make it optional "
                "in the spec (required = false, default = ...)"
            )
        wrong, wanted = _wrong_values(feature.kind, column, absent)
        if (wrong is None or not wrong.any()) and feature.transform is not None:
            wrong, wanted = _outside_domain(feature.transform, column, absent)
        if wrong is not None and wrong.any():
            raise ValueError(
                f"impression log {source}: {feature.kind} feature {feature.name!r} must be {wanted}; "
                + wrong_rows(wrong, column, rows)
            )


def _outside_domain(transform: str, column: pa.ChunkedArray, absent: np.ndarray) -> tuple[np.ndarray, str]:
    """(the rows of a numeric column, its values already valid numbers, below ``transform``'s domain, why)."""
    values = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    return ~absent & ~in_domain(transform, np.nan_to_num(values)), outside_domain(transform).removeprefix("must be ")


INEXACT_INTEGERS = (
    "an integer below 2**53 (integers past 2**53 cannot be a numeric feature exactly: make it categorical in the "
    "spec or leave it out)"
)


def _wrong_values(kind: str, column: pa.ChunkedArray, absent: np.ndarray) -> tuple[np.ndarray | None, str]:
    """(the rows whose value a feature of ``kind`` cannot take, what it takes); None: every row fits."""
    text = is_text(column.type)
    if kind == "numeric":
        wanted = "a finite number within float32's range"
        if text:  # CSV reads a column as text when one of its values is not a number: point at that one
            not_numbers = np.array([v is not None and not reads_as_number(v) for v in column.to_pylist()])
            return (not_numbers if not_numbers.any() else ~absent), wanted + " (the column holds text)"
        if is_number(column.type):  # an unsafe cast: an integer past 2**53 is refused below, not a cast's ArrowInvalid
            values = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            inexact = ~absent & (np.abs(values) >= EXACT_INTEGERS) if pa.types.is_integer(column.type) else None
            if inexact is not None and inexact.any():  # a uint64 id (Avazu's) read as a number rounds to another's
                return inexact, INEXACT_INTEGERS
            return ~absent & ~(np.abs(values) <= FLOAT32_LIMIT), wanted
        return None if pa.types.is_boolean(column.type) else ~absent, wanted
    wanted = "a string or an integer"
    if pa.types.is_floating(column.type):  # pandas' integers with gaps: read as integers where whole_number reads
        values = column.to_numpy(zero_copy_only=False)
        wrong = ~absent & ~whole_numbers(values)
        if (wrong & whole_floats(values)).any():  # whole, so from 2**53 on: rounded
            # pandas wrote int64 ids with gaps as floats, rounding them; an ad server's exact id hashes elsewhere
            wanted += (
                ", or a whole float below 2**53 (from there on a float may have lost the id's last digits already: "
                "write the ids as int64 or as text)"
            )
        return wrong, wanted
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):  # bytes: as text, if UTF-8
        not_text = np.array([v is not None and not is_utf8(v, MAX_CATEGORY_CHARS) for v in column.to_pylist()])
        return not_text, f"{wanted} of at most {MAX_CATEGORY_CHARS} characters (bytes are read as UTF-8 text)"
    if text:  # one long value took memory by the row count in the encoder (2 MB: 7.4 GB for 300 rows)
        too_long = pc.fill_null(pc.greater(pc.utf8_length(column), MAX_CATEGORY_CHARS), False)
        too_long = too_long.to_numpy(zero_copy_only=False)
        return (too_long if too_long.any() else None), f"{wanted} of at most {MAX_CATEGORY_CHARS} characters"
    if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
        return None, wanted
    return ~absent, f"{wanted}, not {column.type} values"  # dates, times, decimals, lists: cast them first
