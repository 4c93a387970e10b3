"""Retrieval training data from a user's own logs: displayed impressions and non-displayed candidates.

``ctr train esam --logs DISPLAYED --non-displayed OTHER --spec SPEC.toml`` reads

- DISPLAYED: an impression log (DESIGN.md §1): ``request_id``, ``position``, ``click``,
  ``conversion`` and the spec's features, one row per displayed item;
- OTHER: the non-displayed candidates, in the same style without labels: the spec's candidate
  features (``request_id`` optional), one row per candidate that was not displayed;
- SPEC.toml: the feature spec; its context features describe the query (the request), its candidate
  features the item. The first candidate categorical feature is the item id of the catalog.

A query is a request: its context features (from its first displayed row) and its displayed items in
position order, padded to the longest request with ``item_mask`` = 0 (ESAM's losses skip padding).
Each query gets ``n_targets`` items drawn uniformly from the non-displayed table (the target domain,
as the world's data draws them from the never-displayed catalog). The catalog exported beside the
towers is every distinct item id of both tables, with the features of its first row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from common.encoder import FeatureEncoder, fit_statistics
from common.features import FeatureSpec
from training.fitting.dataset import ImpressionTensors
from training.logs.column_arrays import column_array, feature_columns
from training.logs.column_names import refuse_missing_columns
from training.logs.feature_checks import check_features
from training.logs.files import non_displayed_files
from training.logs.fingerprint import fingerprint
from training.logs.reading import read_logs, read_tables
from training.logs.row_words import FileRows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogRetrievalData:
    spec: FeatureSpec  # fitted on both tables
    tensors: ImpressionTensors  # grouped by request, as ``training/retrieval_data.py`` describes
    catalog: dict[str, list]  # raw candidate features of every distinct item
    catalog_id: str  # the item id feature
    fingerprint: str


def read_candidates(path: str | Path, spec: FeatureSpec) -> pa.Table:
    """The non-displayed table, its files read and joined as the displayed log's (``read_tables``: a file
    that cannot be read or disagrees on a column's type is named): every required candidate feature of
    ``spec`` present (``refuse_missing_columns``, as the displayed log's: a name differing in case or spaces, a
    CSV's other delimiter are said), and every value one the service would take (``check_features``, as the
    displayed log's: a null id became the item 'None')."""
    candidates = spec.for_side("candidate")
    required = [f.name for f in candidates.features if f.required]

    def check(file: Path, table: pa.Table) -> None:
        # each file alone, so that a refusal names the file and the row in it (joined, the second file's rows
        # were numbered on from the first's, in a message naming the folder)
        refuse_missing_columns(file, required, table.column_names, "non-displayed table")
        if table.num_rows:  # a header alone has no types to check (CSV reads its columns as nulls)
            check_features(table, candidates, f"{file} (non-displayed)", FileRows(file))

    non_displayed_files(path)  # a missing table said as the table it is, not as an impression log
    return read_tables(path, "non-displayed table", check, categorical=[f.name for f in spec.categorical])


def catalog_id_feature(spec: FeatureSpec) -> str:
    ids = [f.name for f in spec.for_side("candidate").categorical]
    if not ids:
        raise ValueError("a retrieval spec needs a categorical candidate feature: the item id")
    return ids[0]


def _item_columns(displayed: pa.Table, other: pa.Table, items: FeatureSpec) -> dict[str, np.ndarray]:
    """The candidate features present in both tables, the displayed rows first."""
    return {
        f.name: np.concatenate([column_array(t, f.name) for t in (displayed, other)])
        for f in items.features
        if f.name in displayed.column_names and f.name in other.column_names
    }


# Past this many padded item slots per displayed row, the longest requests' padding is said: every request
# is padded to the longest, so one very long request multiplies the memory and time of the whole fit
PADDING_WARNING_RATIO = 4.0


def warn_if_padded(counts: np.ndarray, displayed_path: Path) -> None:
    """One warning line when padding every request to the longest multiplies the item slots (memory and
    time) by more than PADDING_WARNING_RATIO."""
    slots, rows = int(counts.max()) * counts.size, int(counts.sum())
    if slots > PADDING_WARNING_RATIO * rows:
        logger.warning(
            "requests in %s are padded to the longest, %d displayed items (median %d): %d item slots for %d "
            "displayed rows (%.0fx the memory and time); drop or split requests longer than a display",
            displayed_path,
            int(counts.max()),
            int(np.median(counts)),
            slots,
            rows,
            slots / rows,
        )


def build_log_data(
    displayed_path: Path, other_path: Path, spec: FeatureSpec, n_targets: int, seed: int
) -> LogRetrievalData:
    """Group the displayed log by request, sample non-displayed targets, encode both sides."""
    if n_targets < 1:
        raise ValueError(f"n_targets must be >= 1, got {n_targets}")
    displayed = read_logs(displayed_path, spec)
    if "request_id" not in displayed.column_names:
        raise ValueError(f"impression log {displayed_path} lacks the column request_id (a query is a request)")
    other = read_candidates(other_path, spec)
    item_id = catalog_id_feature(spec)
    items = _item_columns(displayed, other, spec.for_side("candidate"))
    left_out = [f.name for f in spec.for_side("candidate").features if f.name not in items]
    if left_out:  # an optional item feature one table lacks: its default everywhere, the logged values unused
        logger.warning(
            "item features %s are not in both tables (%s, %s): every item takes their defaults",
            left_out,
            displayed_path,
            other_path,
        )
    first = np.sort(np.unique(items[item_id].astype(str), return_index=True)[1])  # each item's first row
    logger.info("catalog ids: feature %r (the spec's first candidate categorical), %d items", item_id, first.size)
    spec = fit_statistics(spec, {**feature_columns(displayed, spec.for_side("context")), **items})
    item_spec, query_spec = spec.for_side("candidate"), spec.for_side("context")

    request = column_array(displayed, "request_id").astype(str)
    order = np.lexsort((column_array(displayed, "position"), request))  # by request, then position
    requests, starts, counts = np.unique(request[order], return_index=True, return_counts=True)
    n, slots = len(requests), int(counts.max())
    warn_if_padded(counts, displayed_path)
    first_seen = np.argsort(order[starts], kind="stable")  # queries in the order the log first shows them
    starts, counts = starts[first_seen], counts[first_seen]
    slot = np.arange(slots)[None, :]  # (1, S)
    mask = slot < counts[:, None]  # (Q, S)
    rows = order[np.where(mask, starts[:, None] + slot, starts[:, None])]  # (Q, S): padding repeats row 1

    query = FeatureEncoder(query_spec).encode(feature_columns(displayed.take(order[starts]), query_spec), n)
    item = FeatureEncoder(item_spec).encode(feature_columns(displayed, item_spec), displayed.num_rows)
    target = FeatureEncoder(item_spec).encode(feature_columns(other, item_spec), other.num_rows)
    draws = np.random.default_rng(seed).integers(0, other.num_rows, (n, n_targets))  # (Q, T)
    click = column_array(displayed, "click").astype(np.int64)[rows] * mask
    tensors = {
        "query_categorical": torch.from_numpy(query.categorical),
        "query_numeric": torch.from_numpy(query.numeric),
        "item_categorical": torch.from_numpy(item.categorical[rows]),
        "item_numeric": torch.from_numpy(item.numeric[rows]),
        "item_mask": torch.from_numpy(mask.astype(np.int64)),
        "click": torch.from_numpy(click),
        "target_categorical": torch.from_numpy(target.categorical[draws]),
        "target_numeric": torch.from_numpy(target.numeric[draws]),
    }
    return LogRetrievalData(
        spec=spec,
        tensors=ImpressionTensors(tensors),
        catalog={name: column[first].tolist() for name, column in items.items()},
        catalog_id=item_id,
        fingerprint=f"displayed:{fingerprint(displayed_path)}|non_displayed:{fingerprint(other_path)}",
    )
