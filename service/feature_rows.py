"""A scoring request's validated feature values, kept raw until its batch is encoded.

``/v1/score`` checks every value of a request on the event loop (scoring.py) but does not encode it
there: the request joins its model's batcher as ``FeatureRows``, and the batch worker encodes the rows
of every request in the batch with one ``FeatureEncoder.encode`` call, off the event loop. Encoding is
numpy work whose cost is mostly per call, not per row, so one call per batch instead of one per
request is what lets dynamic batching take the model's whole cost out of small requests.

Encoding rows together gives exactly the tensors encoding each request alone would (every value is
encoded on its own: hashing and standardising are per value; a context value is repeated over its
request's candidates, which is what the encoder's broadcast does), so ``encode_slices`` of a batch is
the concatenation of the requests' own encodings (tests/service/test_feature_rows.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.encoder import FeatureEncoder


@dataclass(frozen=True, eq=False)
class FeatureRows:
    """``n_rows`` candidates: context values shared by all of them, candidate values one per row.

    Every value has been checked to be one its feature's encoder takes (scoring.py), so encoding
    these rows cannot fail on the client's account.
    """

    context: dict[str, Any]  # feature name -> one value for every row
    columns: dict[str, list[Any]]  # feature name -> n_rows values, None where a candidate omits it
    n_rows: int


def encode_slices(
    encoder: FeatureEncoder, names: Collection[str], parts: Sequence[tuple[FeatureRows, int, int]]
) -> dict[str, np.ndarray]:
    """The input tensors of rows ``start:stop`` of each part, in order, by one encoder call.

    ``names`` are the encoder's features. A feature a request does not give is ``None`` in its rows,
    which encodes as the feature's default, as leaving the feature out would (a required feature is
    always given: the checks before batching see to that).
    """
    if len(parts) == 1:  # one request: its context stays scalar and the encoder broadcasts it
        rows, start, stop = parts[0]
        if start == 0 and stop == rows.n_rows:
            selected = {name: value for name, value in rows.context.items() if name in names}
            selected.update((name, column) for name, column in rows.columns.items() if name in names)
            return encoder.encode(selected, rows.n_rows).as_inputs()
    columns: dict[str, list[Any]]
    n_rows = sum(stop - start for _, start, stop in parts)
    if n_rows == len(parts):  # one row from each part (1-candidate requests): one pick per value
        picks = [(rows.context, rows.columns, start) for rows, start, _ in parts]
        columns = {
            name: [c[name] if name in c else (o[name][i] if name in o else None) for c, o, i in picks] for name in names
        }
        return encoder.encode(columns, n_rows).as_inputs()
    columns = {name: [] for name in names}
    for rows, start, stop in parts:  # a request's context value repeats over its rows; absent is None
        context, own = rows.context, rows.columns
        for name, column in columns.items():
            if name in context:
                column += [context[name]] * (stop - start)
            else:
                values = own.get(name)
                column += values[start:stop] if values is not None else [None] * (stop - start)
    return encoder.encode(columns, n_rows).as_inputs()
