"""Which rows of an impression log were displayed in a random order: the explored rows, from the ``propensity`` column.

A row is **explored** when its ``propensity`` is a number above 0 and below 1: the logging policy drew its display
at random, and logged how likely that display was. The auction's exploration slice logs 1 / (the request's eligible
candidates) on the rows it shows in a uniformly random order (``ctr auction --explore``, clients/auction/explore.py);
the world's ``uniform`` policy logs 1 / (candidates) (training/world/policy.py). A deterministic ranking logs 1 (the
auction's GSP rows) or nothing (null: the world's ``feedback`` and ``popularity`` policies write the column empty), and
a log without the column has no explored row.

The rule reads a propensity below 1 as a display whose position does not depend on the ad: true of both policies
above, which order the candidates uniformly. A log whose random policy favours some ads at some slots (a softmax
over the scores) holds rows of propensity below 1 whose slots are still confounded by the ads: the bypass's
``explored`` start (training/models/explored_start.py), the only reader, should not be used on such a log.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PROPENSITY = "propensity"  # the log column (common/log_columns.py RESERVED_COLUMNS)
EXPLORED = "explored"  # the training tensor of each row's explored flag (training/fitting/dataset.py)


def explored_rows(table: pa.Table) -> np.ndarray | None:
    """(rows,) bool: each row of ``table`` explored (0 < propensity < 1); None when the table has no numeric
    ``propensity`` column (a null propensity is a row not explored)."""
    if PROPENSITY not in table.column_names:
        return None
    column = table.column(PROPENSITY)
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
        return None
    inside = pc.and_(pc.greater(column, 0), pc.less(column, 1))
    return np.asarray(pc.fill_null(inside, False).to_numpy(zero_copy_only=False), dtype=bool)
