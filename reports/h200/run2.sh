#!/bin/bash
# Second device run: the failing CUDA test's output, the ways of running on CUDA, and the service with the fastest.
# Usage: bash reports/h200/run2.sh PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick]
source "$(dirname "$0")/assemble.sh"  # the arguments, log(), assemble()

main() {
    assemble || return
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
