#!/bin/bash
# Second device run: the failing CUDA test's output, the ways of running on CUDA, and the service with the fastest.
# Usage: bash .gpu_b/run2.sh PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick]
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
    echo "import sys; sys.path.insert(0, '$SITE')" > "$PURELIB/000_ctr_device_site.pth" || return 6
    LIBDIRS=$(find /opt /usr/local /usr/lib /usr/lib64 -xdev \( -name 'libcublasLt.so.13*' -o -name 'libcublas.so.13*' \
        -o -name 'libcudart.so.13*' -o -name 'libcurand.so.10*' -o -name 'libcudnn.so.9*' -o -name 'libcufft.so.12*' \) \
        -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
    export LD_LIBRARY_PATH="${LIBDIRS}${LD_LIBRARY_PATH:-}"
    log "CUDA test"
    "$PY" -m pytest -q -rs --tb=short -p no:cacheprovider -W ignore tests/service/test_onnx_session.py 2>&1 | tail -40
    log "ways"
    nvidia-smi --query-gpu=clocks.sm,clocks.mem,pstate --format=csv
    PYTHONPATH=. "$PY" reports/cuda_run_ways.py -r models --out "$OUT/cuda_run_ways_h200.json" 2>&1 | grep -v "^\s*$" | cut -c1-220
    nvidia-smi --query-gpu=clocks.sm,clocks.mem,pstate --format=csv
    WAY=$("$PY" -c "import json, sys; m = json.load(open(sys.argv[1]))['sizes']['100']['median_us_per_run']; print(min(m, key=m.get))" "$OUT/cuda_run_ways_h200.json")
    log "fastest at 100 rows: $WAY"
    CASES=raw_ort,service_100,service_1_batched
    log "bench A: the code as it is (bound_device)"
    CTR_USE_CUDA=true "$PY" -m cli.main bench serve -r models --cases $CASES --step-s "$STEP" $QUICK \
        --out "$OUT/bench_serve_h200_cuda_3.json" 2>&1 | grep -v -e " INFO " -e ": nan$" | tail -12
    if [ "$WAY" != bound_device ]; then
        log "bench B: $WAY"
        CTR_BENCH_RUN_WAY=$WAY CTR_USE_CUDA=true "$PY" -m cli.main bench serve -r models --cases $CASES --step-s "$STEP" \
            $QUICK --service-root .gpu_b/variant --out "$OUT/bench_serve_h200_cuda_way_$WAY.json" 2>&1 \
            | grep -v -e " INFO " -e ": nan$" | tail -12
    fi
    log "done"
}
main 2>&1 | tee "$OUT/log2.txt"
