"""Ray Serve peer: one deployment whose ``@serve.batch`` method scores a batch of bodies at once.

The idiom of Ray Serve's batching guide: the ingress deployment's ``__call__`` takes the Starlette
request, awaits the ``@serve.batch`` method with its parsed body, and returns a dict that Serve renders
as JSON. Batches are counted in candidates (``batch_size_fn``) and capped at the service's
``max_batch_size`` (1024), waiting at most the service's ``max_queue_delay_us`` (500 µs) to fill.
Access logs are off, as in the service under the bench. Run as ``python -m clients.bench.peers.ray_app
--port N``: it starts a local Ray cluster of its own (no dashboard), Serve's HTTP proxy on loopback
``N``, and stays until SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

import ray
from ray import serve
from ray.serve.schema import LoggingConfig
from starlette.requests import Request

from clients.bench.peers.model import PeerModel

MAX_BATCH_CANDIDATES = 1024  # the service's max_batch_size (items per ONNX Runtime run)
BATCH_WAIT_S = 0.0005  # the service's max_queue_delay_us


def candidates_in(bodies: list[dict[str, Any]]) -> int:
    return sum(len(body["candidates"]) for body in bodies)


@serve.deployment(
    num_replicas=1,
    max_ongoing_requests=MAX_BATCH_CANDIDATES,
    ray_actor_options={"num_cpus": 1},
    logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
)
class Scorer:
    def __init__(self) -> None:
        self.model = PeerModel.from_env()

    @serve.batch(max_batch_size=MAX_BATCH_CANDIDATES, batch_wait_timeout_s=BATCH_WAIT_S, batch_size_fn=candidates_in)
    async def score(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"scores": scores} for scores in self.model.score_batch(bodies)]

    async def __call__(self, request: Request) -> dict[str, Any]:
        return await self.score(await request.json())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 2**20)
    serve.start(
        http_options={"host": "127.0.0.1", "port": args.port},
        logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
    )
    serve.run(Scorer.bind(), route_prefix="/v1/score")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
