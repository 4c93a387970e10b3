"""A Locust load test of a running service: a weighted mix of ``/v1/score`` sizes and ``/v1/similarity``.

    locust -f clients/bench/locustfile.py --headless -u 32 -r 8 -t 60s --csv reports/locust --host http://127.0.0.1:8000

Bodies are drawn by the world simulator with ``ctr sample-request``'s code (``World.sample_request``
under the ``[world]`` settings of ``models/esmm/config.toml``; ``CTR_LOCUST_REPOSITORY`` names another
repository), 32 per kind, made before the users start. Per user, each task is picked with its weight:
``/v1/score`` with 1 candidate (4), 10 (3) and 100 (1), and ``/v1/similarity`` scoring 10 items (1) or
returning the top 10 of the catalog (1); the similarity query is the score request's context (less
``hour``, which the retrieval model does not take) with the first candidate's category as its intent.

Locust is a **closed-loop** generator: each user sends its next request only after the last one was
answered, so a server that slows down is sent less (coordinated omission) and its latencies look
better than an open arrival stream would see. Quote ``ctr bench serve`` / ``ctr bench peers`` (open
loop, clients/bench/loadgen.py) for capacity and latency; this file is for mixes, soak runs and Locust's UI.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from locust import FastHttpUser, task

from training.config_world import repository_world

BODIES_PER_KIND = 32
SIMILARITY_ITEMS = 10
TOP_K = 10
HEADERS = {"Content-Type": "application/json"}


def similarity_body(request: dict[str, Any], k: int | None = None) -> dict[str, Any]:
    """A ``/v1/similarity`` body from a score request: its context as the query (intent: the first
    candidate's category), and either its candidates as the items or ``k`` for the catalog's top k."""
    query = {name: value for name, value in request["context"].items() if name != "hour"}
    query["query_category"] = request["candidates"][0]["ad_category"]
    if k is not None:
        return {"query": query, "k": k}
    return {"query": query, "items": request["candidates"]}


def world_bodies(repository: Path, model: str = "esmm") -> dict[str, list[bytes]]:
    """The encoded bodies of every task, drawn by the world of ``model``'s config."""
    world = repository_world(repository, model)
    seeds = range(BODIES_PER_KIND)
    bodies = {f"score_{n}": [world.sample_request(n, seed=s) for s in seeds] for n in (1, 10, 100)}
    items = [similarity_body(world.sample_request(SIMILARITY_ITEMS, seed=s)) for s in seeds]
    top_k = [similarity_body(world.sample_request(1, seed=s), k=TOP_K) for s in seeds]
    return {
        name: [json.dumps(b).encode() for b in found]
        for name, found in {**bodies, "items": items, "top_k": top_k}.items()
    }


BODIES = world_bodies(Path(os.environ.get("CTR_LOCUST_REPOSITORY", "models")))


class ScoringUser(FastHttpUser):
    """One ad server calling the service back to back (no think time)."""

    def _post(self, path: str, kind: str, name: str) -> None:
        self.client.post(path, data=random.choice(BODIES[kind]), headers=HEADERS, name=name)

    @task(4)
    def score_1(self) -> None:
        self._post("/v1/score", "score_1", "/v1/score [1]")

    @task(3)
    def score_10(self) -> None:
        self._post("/v1/score", "score_10", "/v1/score [10]")

    @task(1)
    def score_100(self) -> None:
        self._post("/v1/score", "score_100", "/v1/score [100]")

    @task(1)
    def similarity_items(self) -> None:
        self._post("/v1/similarity", "items", f"/v1/similarity [{SIMILARITY_ITEMS} items]")

    @task(1)
    def similarity_top_k(self) -> None:
        self._post("/v1/similarity", "top_k", f"/v1/similarity [top {TOP_K}]")
