"""How a refusal says which rows of a column are wrong: how many, and the first, with its value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from common.plural import counted, the_first
from training.logs.row_words import FileRows

SHOWN_VALUE_CHARS = 80  # of a wrong value, in a refusal


def wrong_rows(wrong: np.ndarray, column: pa.ChunkedArray, rows: FileRows) -> str:
    """How many rows are wrong and the first of them (named where it lies in its file: ``rows``), with its
    value: "3 rows are not (the first, row 7, is 'x')"."""
    first = int(np.flatnonzero(wrong)[0])
    value = column[first].as_py()
    shown = "missing" if value is None or value != value else repr(value)  # null, or NaN
    if len(shown) > SHOWN_VALUE_CHARS:  # a text's own length; any other value's (a timestamp's) as written
        length = len(value) if isinstance(value, str | bytes) else len(shown)
        shown = f"{shown[:SHOWN_VALUE_CHARS]}... ({length} characters)"
    count = int(wrong.sum())
    verb = "is" if count == 1 else "are"
    return f"{counted(count, 'row')} {verb} not ({the_first(count)}{rows.named(first)}, is {shown})"
