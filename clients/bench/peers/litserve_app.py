"""LitServe peer: a ``LitAPI`` with LitServe's batching on (``max_batch_size``, ``batch_timeout``).

LitServe's idiom: ``setup`` loads the model in the inference worker, ``decode_request`` takes each
parsed body, ``batch`` gathers the decoded bodies of a batch, ``predict`` runs them at once and
``unbatch`` / ``encode_response`` give each request its answer. Batches hold at most 64 requests (LitServe
counts requests, not candidates) and wait at most the service's ``max_queue_delay_us`` (500 µs) to
fill. One API server process and one inference worker on the CPU. Run as
``python -m clients.bench.peers.litserve_app --port N``.
"""

from __future__ import annotations

import argparse
from typing import Any

import litserve as ls

from clients.bench.peers.model import PeerModel, Score

MAX_BATCH_REQUESTS = 64
BATCH_TIMEOUT_S = 0.0005  # the service's max_queue_delay_us


class ScoreAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.model = PeerModel.from_env()

    # decode_request and encode_response stay unannotated on purpose: LitServe makes their annotations
    # the endpoint's request and response models (FastAPI validation); unannotated, the body is parsed
    # as plain JSON and the answer rendered as plain JSON, LitServe's default path.
    def decode_request(self, request, **kwargs):
        return request

    def batch(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return inputs

    def predict(self, x: list[dict[str, Any]], **kwargs: Any) -> list[list[Score]]:
        return self.model.score_batch(x)

    def unbatch(self, output: list[list[Score]]) -> list[list[Score]]:
        return output

    def encode_response(self, output, **kwargs):
        return {"scores": output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    api = ScoreAPI(max_batch_size=MAX_BATCH_REQUESTS, batch_timeout=BATCH_TIMEOUT_S, api_path="/v1/score")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
