"""ONNX Runtime's run of two exports of a model, side by side: µs per run at a few batch sizes.

Both sessions opened by the service's own code (`create_session`: all graph optimisations, no spinning;
one intra-op thread, as `ctr bench serve` runs it), in one process; for each batch size, ``--blocks``
blocks of ``--runs`` runs alternated between the two (ABBA), so a slow spell of the host falls on both;
printed: the median and the least µs per run of each, and the ratio of the medians (the second over the
first).

    PYTHONPATH=. python reports/onnx_run_ab.py FIRST.onnx SECOND.onnx [--sizes 1,4,16,32,100]

Used in docs/serving-log.md, "The exported bypass term".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.models.onnx import create_session
from service.settings import Settings

CATEGORICAL_HIGH = 1000  # within every categorical feature's buckets of the world's models


def session(path: Path) -> ort.InferenceSession:
    """As the service opens a model (its settings but one intra-op thread, as `ctr bench serve` runs it), on the CPU."""
    opened, _ = create_session(path.read_bytes(), Settings(intra_op_threads=1, use_cuda=False))
    return opened


def feed(first: ort.InferenceSession, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    inputs = {}
    for value in first.get_inputs():
        width = value.shape[1]
        if value.type == "tensor(int64)":
            inputs[value.name] = rng.integers(0, CATEGORICAL_HIGH, (rows, width)).astype(np.int64)
        else:
            inputs[value.name] = rng.standard_normal((rows, width)).astype(np.float32)
    return inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--sizes", default="1,4,16,32,100")
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    sessions = [session(args.first), session(args.second)]
    rng = np.random.default_rng(0)
    sys.stdout.write(f"first: {args.first}\nsecond: {args.second}\n")
    for rows in (int(size) for size in args.sizes.split(",")):
        inputs = feed(sessions[0], rows, rng)
        times: list[list[float]] = [[], []]
        for s in sessions:
            for _ in range(args.runs):
                s.run(None, inputs)
        for block in range(args.blocks):
            for index in (0, 1) if block % 2 == 0 else (1, 0):
                started = time.perf_counter()
                for _ in range(args.runs):
                    sessions[index].run(None, inputs)
                times[index].append((time.perf_counter() - started) / args.runs * 1e6)
        first, second = (statistics.median(t) for t in times)
        sys.stdout.write(
            f"{rows:>4} rows: first {first:7.1f} µs, second {second:7.1f} µs (least {min(times[0]):.1f} /"
            f" {min(times[1]):.1f}); second / first {second / first:.3f}\n"
        )


if __name__ == "__main__":
    main()
