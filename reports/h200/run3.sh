#!/bin/bash
# Third device run: the CUDA test and the ways of running on CUDA, the code with TF32 off.
# Usage: bash reports/h200/run3.sh PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick]
source "$(dirname "$0")/assemble.sh"  # the arguments, log(), assemble()

main() {
    assemble || return
    log "CUDA test"
    "$PY" -m pytest -q -rs --tb=short -p no:cacheprovider -W ignore tests/service/test_onnx_session.py 2>&1 | tail -40
    log "ways (TF32 off in create_session)"
    nvidia-smi --query-gpu=clocks.sm,clocks.mem,pstate --format=csv
    PYTHONPATH=. "$PY" reports/cuda_run_ways.py -r models --blocks 6 --out "$OUT/cuda_run_ways_h200_tf32_off.json" 2>&1 | grep -v "^\s*$" | cut -c1-220
    nvidia-smi --query-gpu=clocks.sm,clocks.mem,pstate --format=csv
    log "done"
}
main 2>&1 | tee "$OUT/log3.txt"
