#!/bin/bash
# Fourth device run: the GPU install's own library path (no LD_LIBRARY_PATH: the service's
# load_cuda_libraries finds NVIDIA's wheels beside onnxruntime, as `pip install .[gpu]` lays them out),
# what TF32 off costs per run, and the batch sizes the service forms on CUDA.
# Usage: bash reports/h200/run4.sh PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick]
source "$(dirname "$0")/assemble.sh"  # the arguments, log(), assemble(), use_wheel_path()

main() {
    assemble || return
    if ! use_wheel_path; then
        log "the preload check is skipped"
    else
        "$PY" - <<'PY'
import logging
from service.models.onnx import create_session
from service.settings import Settings
logging.basicConfig(level=logging.WARNING)
model = open("models/esmm/1/model.onnx", "rb").read()
session, provider = create_session(model, Settings(use_cuda=True, intra_op_threads=1))
maps = [line.split()[-1] for line in open("/proc/self/maps")]
loaded = sorted({path for path in maps if ("nvidia" in path or "/libcu" in path) and ".so" in path})
print("provider:", provider)
print("CUDA libraries mapped:", *loaded, sep="\n  ")
PY
        log "the service on that path"
        export CTR_USE_CUDA=true
        "$PY" -m cli.main serve -r models --port 8791 > "$OUT/serve4.log" 2>&1 &
        SERVER=$!
        "$PY" - <<'PY'
import json, time, urllib.request
for _ in range(120):
    try:
        urllib.request.urlopen("http://127.0.0.1:8791/v2/health/ready", timeout=1)
        break
    except OSError:
        time.sleep(0.5)
models = json.load(urllib.request.urlopen("http://127.0.0.1:8791/v1/models", timeout=5))
print(json.dumps(models)[:1500])
PY
        kill -TERM $SERVER; wait $SERVER
        tail -5 "$OUT/serve4.log"
        log "batches the service forms on CUDA (100 and 1 candidates)"
        for RATE in 600 1200; do
            PYTHONPATH=. "$PY" reports/thread_occupancy.py --candidates 100 --rate $RATE 2>&1 | tail -25
        done
        PYTHONPATH=. "$PY" reports/thread_occupancy.py --candidates 1 --rate 6000 2>&1 | tail -25
    fi
    log "ways, with TF32 on as a way"
    PYTHONPATH=. "$PY" reports/cuda_run_ways.py -r models --blocks 6 --out "$OUT/cuda_run_ways_h200_tf32_ab.json" 2>&1 | grep -v "^\s*$" | cut -c1-220
    log "done"
}
main 2>&1 | tee "$OUT/log4.txt"
