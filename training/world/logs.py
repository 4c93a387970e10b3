"""The impression log (DESIGN.md §1): its schema, its assembly from index arrays, its Parquet file.

One row per displayed ad. Feature columns are named as in ``feature_spec()``; the ground-truth
columns (``true_ctr``, ``true_cvr``, ``examination``, ``conversion_potential``, ``user_idx``,
``ad_idx``) are for evaluation and are ignored by the trainer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from common.whole_file import written_whole
from training.world.population import Population, Vocabulary

# what only the simulator knows (for evaluation): never features, as a feature they would leak the answer
GROUND_TRUTH_COLUMNS = ("true_ctr", "true_cvr", "examination", "conversion_potential", "user_idx", "ad_idx")

LOG_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", pa.int64()),
        # context
        ("user_id", pa.string()),
        ("user_segment", pa.string()),
        ("device", pa.string()),
        ("hour", pa.string()),
        ("user_age", pa.float32()),
        # candidate
        ("ad_id", pa.string()),
        ("ad_category", pa.string()),
        ("advertiser_id", pa.string()),
        ("ad_price", pa.float32()),
        ("ad_quality", pa.float32()),
        # display and labels
        ("position", pa.int32()),
        ("click", pa.int8()),
        ("conversion", pa.int8()),
        ("propensity", pa.float32()),  # null unless the logging policy is uniform
        # ground truth
        ("true_ctr", pa.float32()),
        ("true_cvr", pa.float32()),
        ("examination", pa.float32()),
        ("conversion_potential", pa.int8()),
        ("user_idx", pa.int32()),
        ("ad_idx", pa.int32()),
    ]
)


def request_ids(day: int, n_requests: int, n_slots: int) -> pa.Array:
    """ "d{day}-r{i}" for each impression of the day's requests i = 0..n_requests-1 (n_slots rows each)."""
    local = pa.array(np.repeat(np.arange(n_requests, dtype=np.int64), n_slots))
    return pc.binary_join_element_wise(f"d{day}-r", pc.cast(local, pa.string()), "")


def renumbered(table: pa.Table, day: int) -> pa.Table:
    """One day's log with its request ids numbered as day ``day``'s ("d{day}-r{i}", as ``request_ids`` names them):
    a day simulated under another number (the auction's history, days -2 and -1, simulated as the world's days 0
    and 1) is otherwise named as the later day of that number, and a window holding both merged their requests."""
    ids = pc.replace_substring_regex(table.column("request_id"), pattern=r"^d-?[0-9]+-r", replacement=f"d{day}-r")
    return table.set_column(table.column_names.index("request_id"), "request_id", ids)


def build_table(
    columns: dict[str, np.ndarray],
    request_id: pa.Array | pa.ChunkedArray,
    population: Population,
    vocab: Vocabulary,
) -> pa.Table:
    """Assemble the log from per-impression index and value arrays.

    ``columns`` holds: ts, user, hour, ad, position, click, conversion, conversion_potential,
    true_ctr, true_cvr, examination (one value per impression) and propensity (or None).
    """
    user = columns["user"]
    ad = columns["ad"]
    p = population
    n = len(user)

    def lookup(values: pa.Array, index: np.ndarray) -> pa.Array:
        return values.take(pa.array(index, pa.int32()))

    propensity = columns.get("propensity")
    arrays = {
        "request_id": request_id,
        "ts": pa.array(columns["ts"], pa.int64()),
        "user_id": lookup(vocab.user_id, user),
        "user_segment": lookup(vocab.user_segment, p.user_segment[user]),
        "device": lookup(vocab.device, p.user_device[user]),
        "hour": lookup(vocab.hour, columns["hour"]),
        "user_age": pa.array(p.user_age[user], pa.float32()),
        "ad_id": lookup(vocab.ad_id, ad),
        "ad_category": lookup(vocab.ad_category, p.ad_category[ad]),
        "advertiser_id": lookup(vocab.advertiser_id, p.ad_advertiser[ad]),
        "ad_price": pa.array(p.ad_price[ad], pa.float32()),
        "ad_quality": pa.array(p.ad_quality[ad], pa.float32()),
        "position": pa.array(columns["position"], pa.int32()),
        "click": pa.array(columns["click"], pa.int8()),
        "conversion": pa.array(columns["conversion"], pa.int8()),
        "propensity": (pa.nulls(n, pa.float32()) if propensity is None else pa.array(propensity, pa.float32())),
        "true_ctr": pa.array(columns["true_ctr"], pa.float32()),
        "true_cvr": pa.array(columns["true_cvr"], pa.float32()),
        "examination": pa.array(columns["examination"], pa.float32()),
        "conversion_potential": pa.array(columns["conversion_potential"], pa.int8()),
        "user_idx": pa.array(user, pa.int32()),
        "ad_idx": pa.array(ad, pa.int32()),
    }
    return pa.Table.from_arrays([arrays[f.name] for f in LOG_SCHEMA], schema=LOG_SCHEMA)


# the columns of a displayed impression that a candidate never shown has none of (DESIGN.md §1's non-displayed table)
DISPLAY_COLUMNS = ("position", "click", "conversion", "propensity", "conversion_potential", "examination")


def candidate_table(
    columns: dict[str, np.ndarray], request_id: pa.Array | pa.ChunkedArray, population: Population, vocab: Vocabulary
) -> pa.Table:
    """Candidates that were not displayed: the log's columns (``build_table``) but ``DISPLAY_COLUMNS``. ``columns``
    holds ts, user, hour, ad, true_ctr and true_cvr, one value per candidate."""
    n = len(columns["user"])
    labels = {name: np.zeros(n, dtype=np.int64) for name in ("position", "click", "conversion")}
    unlabelled = columns | labels | {"conversion_potential": np.zeros(n, dtype=np.int8), "examination": np.zeros(n)}
    return build_table(unlabelled, request_id, population, vocab).drop_columns(list(DISPLAY_COLUMNS))


def write_logs(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` to ``path`` as Parquet, atomically: a temporary file beside it, then a rename."""
    path = Path(path)
    # a file, not a path: pyarrow reads a path its own way (it wrote "~/x" under $HOME)
    with written_whole(path) as temporary, open(temporary, "wb") as file:
        pq.write_table(table, file)
    return path
