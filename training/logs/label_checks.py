"""The label columns of a log checked (a position, a click and a conversion on every row, no conversion
without a click), and a log of one class refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from common.encoder import EXACT_INTEGERS
from common.plural import counted, the_first
from training.logs.cell_values import reads_as_number
from training.logs.row_words import OWN_TABLE, FileRows
from training.logs.wrong_rows import wrong_rows

POSITION_BASE = " (positions are 1-based: the top slot is 1; add 1 to 0-based positions)"
# label -> (lowest, highest value) allowed; booleans are taken as 0/1 for the click and the conversion
LABEL_RANGES = {"position": (1, None), "click": (0, 1), "conversion": (0, 1)}


def check_labels(table: pa.Table, source: str, rows: FileRows = OWN_TABLE) -> None:
    """ValueError unless every row has a position (an integer, 1 the top slot), a click and a conversion
    (0 or 1, integers or booleans), and no conversion without a click. The message names ``source``, the
    column, how many rows are wrong and the first of them (named where it lies in its file: ``rows``)."""
    values = {}
    for name, (lowest, highest) in LABEL_RANGES.items():
        column = table.column(name)
        wanted = "an integer of at least 1" if highest is None else "0 or 1"
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or (pa.types.is_boolean(kind) and highest)):
            words = [(row, v) for row, v in enumerate(column.to_pylist()) if v is not None and not reads_as_number(v)]
            shown = f" ({the_first(len(words))}{rows.named(words[0][0])}, is {words[0][1]!r})" if words else ""
            raise ValueError(f"impression log {source}: {name} must be {wanted} on every row, not {kind} values{shown}")
        array = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)  # nulls as NaN
        # a uint64 past 2**53 (a safe cast's ArrowInvalid named no file) rounds: no label is read exactly there
        wrong = np.isnan(array) | (array < lowest) | (array != np.floor(array)) | (np.abs(array) >= EXACT_INTEGERS)
        if highest is not None:
            wrong |= array > highest
        if wrong.any():
            raise ValueError(
                f"impression log {source}: {name} must be {wanted} on every row; "
                + wrong_rows(wrong, column, rows)
                + POSITION_BASE * (name == "position" and bool((array == 0).any()))
                + _unclicked_gaps(name, array, values)
            )
        values[name] = array
    unclicked = (values["conversion"] == 1) & (values["click"] != 1)
    if unclicked.any():
        converted = int(unclicked.sum())
        raise ValueError(
            f"impression log {source} has conversions on unclicked impressions (conversion 1 where click is 0): "
            f"{counted(converted, 'row')} ({the_first(converted)}{rows.named(int(np.flatnonzero(unclicked)[0]))})"
        )


def _unclicked_gaps(name: str, array: np.ndarray, values: dict[str, np.ndarray]) -> str:
    """A hint for conversions missing on unclicked rows alone (a conversion join that filled clicked rows only):
    an impression not clicked did not convert ("" for another label, or gaps on clicked rows too)."""
    missing = np.isnan(array)
    if name != "conversion" or not missing.any() or (values["click"][missing] == 1).any():
        return ""
    return f"; the {int(missing.sum())} missing are all on unclicked rows: write 0 there"


def refuse_one_class(
    logs: str | Path, clicks: int, impressions: int, rows: str = "the training logs", tail: str = ""
) -> None:
    """ValueError when every impression of the training logs was clicked, or none was: a CTR model learns
    nothing from one class, and such a log is mostly a broken join (it trained and exported a version that
    predicted a CTR of 1e-4 against 0.035 observed, said only by the warning of a small log). ``rows``: what
    the counted impressions are, before the logs' name; ``tail``: what the rows not counted hold."""
    if clicks in (0, impressions):
        said = "0 on every row" if clicks == 0 else "1 on every row"
        raise ValueError(
            f"{rows} {logs}: click is {said} of {counted(impressions, 'impression')}{tail}, so there is nothing to "
            "learn a click-through rate from (a log of one class is often a join that lost the clicks)"
        )
