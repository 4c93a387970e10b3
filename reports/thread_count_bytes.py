"""Does the served esmm train to the same bytes at 1 and 2 torch threads? Trains it on one small simulated day
(its config as it is, 2,500 impressions) at both counts, in parallel processes that differ in their hash seed too,
and compares model.onnx byte for byte and weight by weight.

    PYTHONPATH=. python reports/thread_count_bytes.py [--rounds 3] [--out reports/thread_count_bytes.json]

The trainer sets ``MKL_CBWR=AUTO,STRICT`` unless the variable is set (training/thread_invariant_sums.py); run it
with ``MKL_CBWR=AUTO`` for MKL's default path, the control: on a 2-core Intel Xeon VM (AVX-512) that path gave
other bytes at 2 threads, on AMD EPYC VMs it did not (docs/results.md, "Timings"). The rounds show whether a
difference is the same each time (an order of sums) or not (a race). ``tests/training/test_reproducible_bytes.py``
checks one round.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
# the served config, its model and training as they are, on one small simulated day (2,500 impressions)
SMALLER = {"days = 5": "days = 1", "requests_per_day = 40000": "requests_per_day = 500"}
THREAD_COUNTS = (1, 2)


def small_day_repository(root: Path) -> Path:
    """A repository at ``root`` holding esmm's served config on the small day."""
    text = (CHECKOUT / "models" / "esmm" / "config.toml").read_text(encoding="utf-8")
    for served, small in SMALLER.items():
        assert served in text, f"models/esmm/config.toml no longer says {served!r}"
        text = text.replace(served, small)
    (root / "esmm").mkdir(parents=True)
    (root / "esmm" / "config.toml").write_text(text, encoding="utf-8")
    return root


def train_and_export(folder: Path, threads: int, hash_seed: int) -> subprocess.Popen:
    """``ctr train esmm --export`` into ``folder``/models at ``threads`` torch threads, started, not awaited."""
    root = small_day_repository(folder / "models")
    command = [sys.executable, "-m", "cli.main", "train", "esmm", "-r", str(root), "--work-dir", str(folder / "work")]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONHASHSEED": str(hash_seed)}
    arguments = [*command, "--export", "--no-progress"]
    return subprocess.Popen(arguments, cwd=CHECKOUT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def weight_differences(one: Path, two: Path) -> dict[str, dict]:
    """Each initializer of two model.onnx files that differs: its shape, largest absolute difference, count."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    weights = [{i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer} for path in (one, two)]
    differences = {}
    for name, first in weights[0].items():
        second = weights[1][name]
        if not np.array_equal(first, second):
            gap = np.abs(first.astype(np.float64) - second.astype(np.float64))
            differences[name] = {"shape": list(first.shape), "largest": float(gap.max()), "count": int((gap > 0).sum())}
    return differences


def one_round(folder: Path) -> dict:
    runs = {threads: train_and_export(folder / f"threads{threads}", threads, threads) for threads in THREAD_COUNTS}
    for threads, process in runs.items():
        output, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            raise SystemExit(f"{threads} thread(s): {output.decode(errors='replace')[-3000:]}")
    files = [next((folder / f"threads{threads}" / "models" / "esmm").rglob("model.onnx")) for threads in THREAD_COUNTS]
    return {
        "sha256": {
            str(t): hashlib.sha256(f.read_bytes()).hexdigest() for t, f in zip(THREAD_COUNTS, files, strict=True)
        },
        "same_bytes": files[0].read_bytes() == files[1].read_bytes(),
        "differing_weights": weight_differences(*files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    arguments = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as work:
        for index in range(arguments.rounds):
            result = one_round(Path(work) / f"round{index}")
            rounds.append(result)
            largest = max((d["largest"] for d in result["differing_weights"].values()), default=0.0)
            sums = " / ".join(result["sha256"][str(t)][:8] for t in THREAD_COUNTS)
            sys.stdout.write(
                f"round {index}: same bytes {result['same_bytes']}, model.onnx sha256 at 1 / 2 threads {sums}, "
                f"{len(result['differing_weights'])} weights differ, by at most {largest:.3g}\n"
            )
            sys.stdout.flush()
    if arguments.out is not None:
        from common.provenance import provenance

        report = {"mkl_cbwr": os.environ.get("MKL_CBWR"), "rounds": rounds, "provenance": provenance()}
        arguments.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
