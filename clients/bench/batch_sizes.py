"""ONNX Runtime's cost per run and per row at each batch size, for a served model (``ctr bench batch-sizes``).

What ``[serving] max_batch_size`` should be depends on where a larger batch stops making each row
cheaper: past that size a batch only makes its requests wait for one another. The rows are the
requests ``ctr bench serve`` sends, encoded as the service encodes a batch (``RawOrt``'s inputs,
concatenated and cut to each size); each size runs back to back on one thread for ``seconds``, the
sizes taking turns over ``rounds`` so that a drift of the host's speed falls on every size alike. Each
size's figure is its median over the rounds.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from clients.bench.batch_size_grid import SIZES
from clients.bench.machine import machine
from clients.bench.serve import RawOrt
from common.plural import counted

FLAT_WITHIN = 0.10  # a size whose cost per row is within this of the cheapest is "past the knee"


def measure(
    repository: Path,
    model: str,
    bodies: list[bytes],
    sizes: tuple[int, ...] = SIZES,
    seconds: float = 1.0,
    rounds: int = 3,
    threads: int = 1,
) -> dict[str, Any]:
    """Median µs per run and per row for each batch size; ``knee_rows``: the smallest size whose cost
    per row is within ``FLAT_WITHIN`` of the cheapest size's."""
    raw = RawOrt(repository, model, bodies, threads)
    rows = _rows(raw.inputs, max(sizes))
    batches = {size: {name: np.ascontiguousarray(column[:size]) for name, column in rows.items()} for size in sizes}
    run_us: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(rounds):
        for size in sizes:
            run_us[size].append(_run_us(raw, batches[size], seconds))
    results = []
    for size in sizes:
        median = statistics.median(run_us[size])
        results.append(
            {
                "rows": size,
                "us_per_run": round(median, 1),
                "us_per_row": round(median / size, 2),
                "rows_per_s": round(size * 1e6 / median),
                "us_per_run_rounds": [round(us, 1) for us in run_us[size]],
            }
        )
    cheapest = min(result["us_per_row"] for result in results)
    for result in results:
        result["per_row_vs_cheapest"] = round(result["us_per_row"] / cheapest, 3)
    knee = next(r["rows"] for r in results if r["us_per_row"] <= cheapest * (1 + FLAT_WITHIN))
    return {
        "machine": machine(),
        "model": model,
        "provider": raw.model.provider,  # the execution provider in use, read back from the session
        "threads": threads,
        "seconds": seconds,
        "rounds": rounds,
        "sizes": results,
        "knee_rows": knee,
    }


def _rows(inputs: list[dict[str, np.ndarray]], n_rows: int) -> dict[str, np.ndarray]:
    """At least ``n_rows`` encoded rows: the requests' tensors, concatenated (repeated if need be)."""
    parts, have = [], 0
    while have < n_rows:
        part = inputs[len(parts) % len(inputs)]
        parts.append(part)
        have += len(next(iter(part.values())))
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _run_us(raw: RawOrt, batch: dict[str, np.ndarray], seconds: float) -> float:
    runs = 0
    start = time.perf_counter()
    while True:
        raw.model.run(batch)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed * 1e6 / runs


def table(report: dict[str, Any]) -> str:
    lines = [f"{'rows':>6}{'µs/run':>11}{'µs/row':>9}{'rows/s':>10}{'per row vs cheapest':>21}"]
    for r in report["sizes"]:
        lines.append(
            f"{r['rows']:>6}{r['us_per_run']:>11.0f}{r['us_per_row']:>9.2f}{r['rows_per_s']:>10}"
            f"{r['per_row_vs_cheapest']:>21.2f}"
        )
    lines.append(
        f"cost per row within {FLAT_WITHIN:.0%} of the cheapest from {counted(report['knee_rows'], 'row')} "
        f"(median of {counted(report['rounds'], 'round')}, {counted(report['threads'], 'intra-op thread')})"
    )
    return "\n".join(lines)
