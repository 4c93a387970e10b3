"""MKL's strict conditional numerical reproducibility, asked for before the trainer's first matrix product.

The README's "the same bytes" (``ctr prepare`` trains with one torch thread, ``ctr train`` with torch's default,
and both export the same model.onnx) held on the AMD EPYC VMs it was measured on and failed on a 2-core Intel
Xeon (AVX-512, 2026-12-06): there MKL's sgemm splits the batch dimension of a weight gradient (``grad.T @ x``,
2,048 rows) between the threads, so the partial sums add up in another order at 2 threads than at 1, and the
served esmm's weights came out apart by up to 3.5e-7 in every layer (the thread counts of
``tests/training/test_reproducible_bytes.py``, the same difference in every round of
``reports/thread_count_bytes.py`` under ``MKL_CBWR=AUTO``). MKL's strict CNR
mode (``MKL_CBWR=AUTO,STRICT``: its fastest code path for the CPU, with sums that do not depend on the thread
count, for ?gemm on AVX2 and AVX-512 branches, oneMKL's "Reproducibility Conditions") made them equal bit for bit.

MKL reads the variable at its first call, not at torch's import: it is set where ``training`` is imported,
before any training code runs a product. A value the user set (``MKL_CBWR=COMPATIBLE``, the docs' way of
emulating another CPU, docs/results.md) is kept. ``provenance.machine`` records it in model.json with the other
variables that choose a kernel path. It covers MKL's products only, not ATen's own reductions: the exported
bytes are checked, not assumed (the test above; ``reports/thread_count_bytes.py`` over several rounds).
"""

from __future__ import annotations

import os

VARIABLE = "MKL_CBWR"
STRICT_AUTO = "AUTO,STRICT"


def ask_for_thread_invariant_sums() -> None:
    """Set ``MKL_CBWR=AUTO,STRICT`` in this process (and those it starts) unless the variable is already set."""
    os.environ.setdefault(VARIABLE, STRICT_AUTO)
