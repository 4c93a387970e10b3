#!/bin/bash
# Device run: onnxruntime-gpu 1.31.1 (CUDA 13) assembled from carried parts, then issue 12's GPU checks.
# Usage: bash reports/h200/run1.sh PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick]
source "$(dirname "$0")/assemble.sh"  # the arguments, log(), assemble()

main() {
    assemble || return
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
    lscpu | grep -E "^Model name|^CPU\(s\)"
    "$PY" - <<'EOF' || return 7
import os
import platform
from pathlib import Path

import numpy as np
import onnxruntime as ort

print("python", platform.python_version(), "numpy", np.__version__)
print("onnxruntime", ort.__version__, ort.__file__)
print("available", ort.get_available_providers())
from service.models.loader import load_newest
from service.settings import Settings

runs = {}
for cuda in (True, False):
    m = load_newest(Settings(model_repository=Path("models"), use_cuda=cuda, intra_op_threads=1), "esmm", ["pctr", "pctcvr"])
    print("use_cuda", cuda, "->", m.provider)
    runs[m.provider] = m
if "CUDAExecutionProvider" not in runs and not os.environ.get("ALLOW_CPU"):
    raise SystemExit("no CUDA session: stopping before the benchmarks")
EOF
    log "CUDA test"
    "$PY" -m pytest -q -rs -p no:cacheprovider tests/service/test_onnx_session.py 2>&1 | tail -6
    for provider in cuda cpu; do
        log "batch sizes $provider"
        env CTR_USE_CUDA=$([ $provider = cuda ] && echo true || echo false) "$PY" -m cli.main bench batch-sizes \
            -r models --sizes 1,8,32,128,512,1024,3200 --seconds 0.5 --rounds 3 --out "$OUT/batch_sizes_h200_$provider.json"
    done
    CASES=raw_ort,service_100,service_1_batched,service_1_unbatched,asgi_only_1
    bench() {  # report name, CTR_USE_CUDA, cases
        log "bench $1"
        env CTR_USE_CUDA=$2 "$PY" -m cli.main bench serve -r models --cases "$3" --step-s "$STEP" $QUICK \
            --out "$OUT/$1.json" 2>&1 | grep -v -e " INFO " -e ": nan$" | tail -22
    }
    bench bench_serve_h200_cuda_1 true $CASES
    bench bench_serve_h200_cpu false raw_ort,service_100,service_1_batched,service_1_unbatched
    bench bench_serve_h200_cuda_2 true $CASES
    log "done"
}
main 2>&1 | tee "$OUT/log.txt"
