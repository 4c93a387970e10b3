"""ONNX Runtime's ways of running a served model on CUDA, side by side: µs per run at a few batch sizes,
where the graph's nodes run, and how far CUDA's outputs are from the CPU's.

The model is opened by the service's own code (``create_session``: all graph optimisations, one intra-op
thread, as ``ctr bench serve`` runs it). Ways, alternated in blocks so a slow spell falls on each:
- ``run``: ``session.run`` on host arrays (ONNX Runtime copies them to the device itself);
- ``bound_device``: the inputs made device ``OrtValue``s first, outputs bound to host memory (``run_bound``
  as the service's ``service/models/onnx.py`` had it at 2026-12-04 17:00 UTC);
- ``bound_host``: the host arrays bound as they are (``bind_cpu_input``), outputs bound to host memory;
- ``run_tf32_on``: ``session.run`` on a second session of the same model with TF32 matrix products on
  (ONNX Runtime's default; the service turns them off, ``CUDA_OPTIONS``): what that choice costs.
Then one profiled pass (ONNX Runtime's profiler) counts the graph's nodes by provider, and the largest
difference between the CUDA and CPU outputs at 1,024 rows is printed, with and without TF32.

    PYTHONPATH=. python reports/cuda_run_ways.py -r models --model esmm --out OUT.json

Needs onnxruntime-gpu and a GPU; used in docs/serving.md, "On a GPU".
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.repository import MODEL_FILE, version_dir
from reports.onnx_run_ab import feed
from service.models.onnx import CPU, CUDA, CUDA_OPTIONS, create_session, session_options
from service.settings import Settings


def run_plain(session: ort.InferenceSession, inputs: dict, names: list[str]) -> list[np.ndarray]:
    return session.run(names, inputs)


def run_bound_device(session: ort.InferenceSession, inputs: dict, names: list[str]) -> list[np.ndarray]:
    binding = session.io_binding()
    for name, array in inputs.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), DEVICE[0], 0))
    for name in names:
        binding.bind_output(name, "cpu")
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()


def run_bound_host(session: ort.InferenceSession, inputs: dict, names: list[str]) -> list[np.ndarray]:
    binding = session.io_binding()
    for name, array in inputs.items():
        binding.bind_cpu_input(name, np.ascontiguousarray(array))
    for name in names:
        binding.bind_output(name, "cpu")
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()


DEVICE = ["cuda"]  # "cpu" where the session fell back to the CPU (a dry run of this script without a GPU)
WAYS = {"run": run_plain, "bound_device": run_bound_device, "bound_host": run_bound_host}


def node_placement(model: bytes, settings: Settings, inputs: dict, names: list[str]) -> dict:
    """A profiled session's median ``model_run`` µs, and its node events by provider and operator with their
    summed µs (20 runs)."""
    options = session_options(settings)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(model, sess_options=options, providers=[(CUDA, CUDA_OPTIONS), CPU])
        for _ in range(20):
            session.run(names, inputs)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    runs = [event["dur"] for event in events if event.get("cat") == "Session" and event["name"] == "model_run"]
    count: collections.Counter = collections.Counter()
    micros: collections.Counter = collections.Counter()
    for event in events:
        args = event.get("args", {})
        if event.get("cat") == "Node" and "provider" in args and event["name"].endswith("_kernel_time"):
            key = f"{args['provider']}:{args.get('op_name', '?')}"
            count[key] += 1
            micros[key] += event.get("dur", 0)
    nodes = {key: {"events": count[key], "us": micros[key]} for key in sorted(count)}
    return {"model_run_median_us": statistics.median(runs) if runs else None, "runs": len(runs), "nodes": nodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--repository", type=Path, default=Path("models"))
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--sizes", default="1,100,1024")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model = (version_dir(args.repository, args.model, args.version) / MODEL_FILE).read_bytes()
    settings = Settings(intra_op_threads=1, use_cuda=True)
    session, provider = create_session(model, settings)
    names = [output.name for output in session.get_outputs()]
    DEVICE[0] = "cuda" if provider == CUDA else "cpu"
    tf32_on = ort.InferenceSession(
        model, sess_options=session_options(settings), providers=[(CUDA, {"use_tf32": "1"}), CPU]
    )
    ways = dict(WAYS, run_tf32_on=lambda _session, inputs, names: tf32_on.run(names, inputs))
    rng = np.random.default_rng(0)
    report: dict = {"provider": provider, "onnxruntime": ort.__version__, "sizes": {}}
    for rows in (int(size) for size in args.sizes.split(",")):
        inputs = feed(session, rows, rng)
        times: dict[str, list[float]] = {way: [] for way in ways}
        for way in ways.values():
            way(session, inputs, names)  # warm-up
        for block in range(args.blocks):
            for way_name in list(ways)[:: 1 if block % 2 == 0 else -1]:
                start = time.perf_counter()
                for _ in range(args.runs):
                    ways[way_name](session, inputs, names)
                times[way_name].append((time.perf_counter() - start) * 1e6 / args.runs)
        medians = {way: round(statistics.median(values), 1) for way, values in times.items()}
        report["sizes"][rows] = {
            "median_us_per_run": medians,
            "least_us_per_run": {w: round(min(v), 1) for w, v in times.items()},
        }
        sys.stdout.write(f"{rows:>6} rows: " + "  ".join(f"{way} {us:8.1f} µs" for way, us in medians.items()) + "\n")
    inputs = feed(session, 1024, rng)
    report["placement_100_rows"] = node_placement(model, settings, feed(session, 100, rng), names)
    sys.stdout.write(f"  profiled model_run median {report['placement_100_rows']['model_run_median_us']} µs\n")
    for key, value in report["placement_100_rows"]["nodes"].items():
        sys.stdout.write(f"  {key:<40} {value['events']:>5} events {value['us']:>8} µs\n")
    on_cpu, _ = create_session(model, Settings(intra_op_threads=1, use_cuda=False))
    expected = on_cpu.run(names, inputs)
    report["max_abs_difference_1024_rows"] = {}
    for tf32 in ("1", "0"):
        cuda = ort.InferenceSession(
            model, sess_options=session_options(settings), providers=[(CUDA, {"use_tf32": tf32}), CPU]
        )
        got = cuda.run(names, inputs)
        worst = {name: float(np.max(np.abs(g - e))) for name, g, e in zip(names, got, expected, strict=True)}
        report["max_abs_difference_1024_rows"][f"use_tf32={tf32}"] = worst
        sys.stdout.write(f"  use_tf32={tf32}: max |CUDA - CPU| {worst}\n")
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
