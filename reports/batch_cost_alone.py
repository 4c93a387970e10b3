"""What a batch of 1-candidate requests costs the served model alone: the encoder's call and ONNX Runtime's
run, timed apart, for a few batch sizes, in this process with nothing else running (one intra-op thread,
the service's loader, encoder and ``ScoringModel.run``; bodies from ``ctr sample-request``'s code).

    PYTHONPATH=. python reports/batch_cost_alone.py [--repository models] [--model esmm]

Used in docs/serving-log.md, "What holds the second ratio down".
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import orjson

from cli.bench import request_bodies
from clients.bench.peers.model import PeerModel, rows_of

SIZES = (1, 8, 16, 32, 64)
REPEATS = 400


def mean_us(call, repeats: int = REPEATS) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="esmm")
    args = parser.parse_args()
    model = PeerModel(args.repository, args.model).model
    bodies = [orjson.loads(body) for body in request_bodies(args.repository, args.model, 1)]
    for size in SIZES:
        parts = [(rows, 0, rows.n_rows) for rows in map(rows_of, (bodies * (size // len(bodies) + 1))[:size])]
        inputs = model.encode(parts)
        mean_us(partial(model.run, inputs), 50)  # warm
        encode, run = mean_us(partial(model.encode, parts)), mean_us(partial(model.run, inputs))
        each = (encode + run) / size
        sys.stdout.write(f"{size:3d} requests: encode {encode:6.1f} µs, run {run:6.1f} µs, {each:5.1f} µs each\n")


if __name__ == "__main__":
    main()
