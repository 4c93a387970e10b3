"""What an auction with retrieval (``ctr auction --retrieval esam``) auctioned, read back from a pipeline's logs, and
what an exported ESAM version would have retrieved, computed by the model in this process (not the service)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from clients.auction.retrieval import top_columns
from clients.auction.traffic import DayRequests, score_bodies
from training.evaluation.served_version import retrieval_model
from training.world import World


def auctioned(log_dir: Path, day: int) -> dict[int, set[int]]:
    """Request -> the ads it was auctioned over: its displayed and its non-displayed rows of the day's logs."""
    out: dict[int, set[int]] = {}
    for name in (f"day{day}.parquet", f"day{day}_non_displayed.parquet"):
        table = pq.read_table(log_dir / name, columns=["request_id", "ad_idx"])
        for request, ad in zip(table.column("request_id").to_pylist(), table.column("ad_idx").to_pylist(), strict=True):
            out.setdefault(int(request.rsplit("r", 1)[1]), set()).add(ad)
    return out


def esam_top_k(repository: Path, version: int, world: World, pool: DayRequests, k: int) -> np.ndarray:
    """(R, k) the ads of each request's ``pool`` with the highest similarity by ``repository``'s esam ``version``,
    loaded as the service loads it."""
    model = retrieval_model(repository, "esam", version)
    similarity = np.empty(pool.ads.shape)
    for r, body in enumerate(score_bodies(world, pool)):
        query = model.query.encoder.encode({key: np.asarray([v]) for key, v in body["context"].items()}, 1)
        items = model.item.encoder.encode(
            {key: np.asarray([c[key] for c in body["candidates"]]) for key in body["candidates"][0]}, pool.ads.shape[1]
        )
        similarity[r] = model.score_items(model.query.embed(query.as_inputs())[0], items.as_inputs())
    return np.take_along_axis(pool.ads, top_columns(similarity, k), axis=1)
