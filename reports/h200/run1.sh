#!/bin/bash
# Device run: onnxruntime-gpu 1.31.1 (CUDA 13) assembled from carried parts, then issue 12's GPU checks.
# Usage: bash .gpu_b/run.sh PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick]
set -u
PY=$1 SITE=$2 CUDA_XZ=$3 OUT=$4 STEP=$5 QUICK=${6:-}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
log() { echo "[$(($(date +%s) - T0)) s] $*"; }

main() {
    [ -f "$CUDA_XZ" ] || CUDA_XZ=.gpu_a/cuda90.so.xz
    [ -f "$CUDA_XZ" ] || { log "no CUDA provider library carried"; return 2; }
    log "assemble $SITE"
    mkdir -p "$SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        .gpu_b/wheels/*.whl || return 3
    tar -xJf .gpu_b/ort_rest.tar.xz -C "$SITE" || return 4
    "$PY" -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
        "$CUDA_XZ" "$SITE/onnxruntime/capi/libonnxruntime_providers_cuda.so" || return 5
    chmod 755 "$SITE"/onnxruntime/capi/*.so
    PURELIB=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    if ! echo "import sys; sys.path.insert(0, '$SITE')" > "$PURELIB/000_ctr_device_site.pth"; then
        log "purelib not writable: sitecustomize in the repo root instead"
        echo "import sys; sys.path.insert(0, '$SITE')" > sitecustomize.py
        export PYTHONPATH=$PWD
    fi
    LIBDIRS=$(find /opt /usr/local /usr/lib /usr/lib64 -xdev \( -name 'libcublasLt.so.13*' -o -name 'libcublas.so.13*' \
        -o -name 'libcudart.so.13*' -o -name 'libcurand.so.10*' -o -name 'libcudnn.so.9*' -o -name 'libcufft.so.12*' \) \
        -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
    export LD_LIBRARY_PATH="${LIBDIRS}${LD_LIBRARY_PATH:-}"
    log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
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
