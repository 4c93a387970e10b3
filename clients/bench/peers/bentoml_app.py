"""BentoML peer: adaptive batching through a batchable API, in BentoML 1.4's service idiom.

A batchable API takes exactly one argument batched along a dimension, so a body with a context and a
candidate list is served as BentoML's adaptive-batching guide composes it: the ingress service
(``Scorer``, ``POST /v1/score`` taking the body's ``context`` and ``candidates`` as its parameters) turns
the body into candidate rows (the context repeated into each, which encodes exactly as the service's
broadcast does) and awaits the batchable ``Model.score_rows`` of the service it depends on
(``bentoml.depends``). BentoML runs each service in its own worker process; ``Model``'s dispatcher
batches rows from concurrent requests (at most the service's 1024 candidates per run; BentoML's
``max_latency_ms`` is a latency budget past which it refuses, set far above the bench's SLO).
Access logs are off, as in the service under the bench. Run as
``python -m clients.bench.peers.bentoml_app --port N`` (``bentoml serve`` on this module).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import bentoml

from clients.bench.peers.model import PeerModel, Score

MAX_BATCH_CANDIDATES = 1024  # the service's max_batch_size (items per ONNX Runtime run)
MAX_LATENCY_MS = 5000  # BentoML refuses a batch it expects to take longer; the bench's timeout
CONFIG: dict[str, Any] = {"workers": 1, "logging": {"access": {"enabled": False}}}


@bentoml.service(**CONFIG)
class Model:
    def __init__(self) -> None:
        self.model = PeerModel.from_env()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_CANDIDATES, max_latency_ms=MAX_LATENCY_MS)
    def score_rows(self, rows: list[dict[str, Any]]) -> list[Score]:
        return self.model.score_batch([{"candidates": rows}])[0]


@bentoml.service(**CONFIG)
class Scorer:
    model = bentoml.depends(Model)

    @bentoml.api(route="/v1/score")
    async def score(self, candidates: list[dict[str, Any]], context: dict[str, Any] | None = None) -> dict[str, Any]:
        rows = [{**(context or {}), **candidate} for candidate in candidates]
        return {"scores": await self.model.to_async.score_rows(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    command = ["serve", "clients.bench.peers.bentoml_app:Scorer", "--host", "127.0.0.1", "--port", str(args.port)]
    bentoml_cli = os.path.join(os.path.dirname(sys.executable), "bentoml")
    os.execv(bentoml_cli, [bentoml_cli, *command])


if __name__ == "__main__":
    main()
