#!/bin/bash
# Fifth device run: small batches on the event loop (`inline_max_items`) on CUDA. The shipped esmm runs
# batches of at most 32 items on the loop; on CUDA a run costs ~0.6 ms whatever its rows. The same code
# against a copy of the repository whose esmm says `inline_max_items = 0`, alternated, the GPU install's
# own library path (run4.sh), after the CUDA tests on that path.
# Usage: bash reports/h200/run5.sh PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick]
source "$(dirname "$0")/assemble.sh"  # the arguments, log(), assemble(), use_wheel_path()

main() {
    assemble || return
    use_wheel_path || log "the machine's library path instead: LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    log "the CUDA tests on that path"
    "$PY" -m pytest -q -rs --tb=short -p no:cacheprovider -W ignore tests/service/test_onnx_session.py 2>&1 | tail -8
    INLINE0=/tmp/models_inline0
    rm -rf $INLINE0 && cp -r models $INLINE0
    sed -i 's/^inline_max_items = 32 /inline_max_items = 0  /' $INLINE0/esmm/config.toml
    grep -n "^inline_max_items" models/esmm/config.toml $INLINE0/esmm/config.toml
    export CTR_USE_CUDA=true
    for RUN in 1 2; do
        for SETTING in 32 0; do
            REPO=models; [ $SETTING = 0 ] && REPO=$INLINE0
            log "inline_max_items = $SETTING, run $RUN: saturation"
            "$PY" -m cli.main bench serve -r $REPO --cases service_1_batched --step-s "$STEP" \
                --out "$OUT/bench_serve_h200_cuda_inline${SETTING}_$RUN.json" 2>&1 | grep -v "^\s*$" | tail -8
            log "inline_max_items = $SETTING, run $RUN: 6,000 req/s"
            PYTHONPATH=. "$PY" reports/thread_occupancy.py --candidates 1 --rate 6000 --repository $REPO 2>&1 | tail -6
        done
    done
    log "done"
}
main 2>&1 | tee "$OUT/log5.txt"
