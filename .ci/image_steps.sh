#!/usr/bin/env bash
# The Dockerfile's steps, run without Docker (none runs on the development machines): a wheel of the
# project, installed with the `cpu` extra (or `gpu`) into a fresh virtual environment (no torch may come
# with it), the image's import check, then `ctr serve` as the image runs it (JSON logs, the models copied
# to a repository of its own), its HEALTHCHECK command, and SIGTERM: a clean exit. For `gpu` also: the
# CUDA provider's libraries, from NVIDIA's wheels, all load but the driver's (the host's, not the image's).
#   make image-check                       (MODELS=models by default: a repository with the default models)
#   make image-check IMAGE_RUNTIME=gpu     (~3 GB of NVIDIA wheels; no GPU needed: the service falls back)
#   make image-check IMAGE_EXTRAS=grpc     (the Dockerfile's --build-arg EXTRAS=grpc: the gRPC port served too)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MODELS=${MODELS:-models}
CTR=${CTR:-.venv/bin/ctr}  # the development install's, for a request body
PORT=${PORT:-8792}
RUNTIME=${IMAGE_RUNTIME:-cpu}
EXTRAS=${IMAGE_EXTRAS:-}
GRPC_PORT=${GRPC_PORT:-8793}
case ",$EXTRAS," in *,grpc,*) grpc=1 ;; *) grpc=0 ;; esac
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo "[image-check] $*"; }

step "build stage: pip wheel --no-deps ."
[ -e build ] && had_build=1 || had_build=0
"$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$work/wheels" . 2>&1 | grep -v "^WARNING: Location" || true
[ "$had_build" = 1 ] || rm -rf build  # setuptools' scratch in the checkout (the image builds in its own stage)
wheel=$(ls "$work"/wheels/*.whl)

extras="$RUNTIME${EXTRAS:+,$EXTRAS}"
lock="locks/image-$RUNTIME.txt"
step "service stage: a fresh venv, pip install -c $lock '$(basename "$wheel")[$extras]'"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-cache-dir -c "$lock" "${wheel}[$extras]" 2>&1 | grep -v "^WARNING: Location" || true
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "[image-check] FAILED: torch came with the service's install" >&2
  exit 1
fi
(cd "$work" && venv/bin/python -c "import service.app, onnxruntime; print(onnxruntime.get_available_providers())")
if [ "$grpc" = 1 ]; then
  (cd "$work" && venv/bin/python -c "import service.v2.grpc.server; print('[image-check] gRPC server: importable')")
fi
if [ "$RUNTIME" = gpu ]; then
  step "CUDA libraries: preloaded from NVIDIA's wheels; the CUDA provider's library needs nothing more but the driver"
  (cd "$work" && venv/bin/python - <<'PY'
import ctypes, logging, pathlib
import onnxruntime as ort
from service.models.onnx import CUDA, load_cuda_libraries
assert CUDA in ort.get_available_providers(), ort.get_available_providers()
records = []
logging.getLogger("service.models.onnx").addHandler(logging.Handler())
logging.getLogger("service.models.onnx").handlers[-1].emit = records.append
load_cuda_libraries()
assert not records, [record.getMessage() for record in records]
provider = pathlib.Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
try:
    ctypes.CDLL(str(provider))
    print("[image-check] the CUDA provider's library loads: a driver is here too")
except OSError as error:  # the loader names the first library it cannot find; libcuda.so.1 is needed last
    assert "libcuda.so.1" in str(error), error
    print("[image-check] CUDA and cuDNN loaded; the provider lacks only libcuda.so.1, the host driver's")
PY
  )
fi

step "CMD: ctr serve (CTR_LOG_FORMAT=json, CTR_MODEL_REPOSITORY a copy of $MODELS)"
cp -r "$MODELS" "$work/models"
mkdir "$work/home"  # the image's user has a writable home (Dockerfile: ONNX Runtime writes under it)
(cd "$work" && exec env -i PATH="$work/venv/bin:/usr/bin:/bin" HOME="$work/home" CTR_HOST=127.0.0.1 CTR_PORT="$PORT" \
  CTR_MODEL_REPOSITORY="$work/models" CTR_LOG_FORMAT=json PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1 \
  $([ "$grpc" = 1 ] && echo CTR_GRPC_PORT="$GRPC_PORT") venv/bin/ctr serve > "$work/serve.log" 2>&1) &
server=$!
for _ in $(seq 1 240); do
  if (cd "$work" && CTR_HOST=127.0.0.1 CTR_PORT="$PORT" venv/bin/python -c "import os, urllib.request; host = '[::1]' if ':' in os.environ.get('CTR_HOST', '') else '127.0.0.1'; urllib.request.urlopen(f'http://{host}:{os.environ[\"CTR_PORT\"]}/v2/health/ready', timeout=2)") 2>/dev/null; then
    break
  fi
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; echo "[image-check] FAILED: ctr serve exited" >&2; exit 1; }
  sleep 0.25
done
step "HEALTHCHECK: ready"
# a body from the development install (the image has no world simulator: no pyarrow, no torch)
"$CTR" sample-request --candidates 2 --seed 1 --repository "$MODELS" > "$work/body.json"
"$work/venv/bin/python" - "$PORT" "$work/body.json" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/score", open(sys.argv[2], "rb").read(),
                                 {"content-type": "application/json"})
scores = json.load(urllib.request.urlopen(request, timeout=10))["scores"]
assert len(scores) == 2 and all(0 < s["pctr"] < 1 for s in scores), scores
print(f"[image-check] POST /v1/score: 200, pctr {[round(s['pctr'], 4) for s in scores]}")
PY
if [ "$grpc" = 1 ]; then  # the standard client, from the development install (the image has none)
  "$(dirname "$CTR")/python" - "$GRPC_PORT" <<'PY'
import sys
import grpc
import tritonclient.grpc as grpcclient
client = grpcclient.InferenceServerClient(f"127.0.0.1:{sys.argv[1]}")
assert client.is_server_live() and client.is_model_ready("esmm"), "the gRPC port answers, esmm not ready"
with grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}") as channel:  # what grpc_health_probe sends: no bytes
    status = channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
assert status == b"\x08\x01", f"grpc.health.v1 Check answered {status!r}, not SERVING"
print(f"[image-check] gRPC on {sys.argv[1]}: live, esmm ready (tritonclient), health SERVING")
PY
fi
"$work/venv/bin/python" - "$work/serve.log" <<'PY' || { echo "[image-check] FAILED: the log is not JSON lines" >&2; exit 1; }
import json, sys
for number, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        json.loads(line)
    except ValueError:
        sys.exit(f"[image-check] line {number} of the log is not JSON: {line.rstrip()!r}")
PY
step "logs: JSON lines"
kill -TERM "$server"
status=0
wait "$server" || status=$?
server=
# uvicorn raises the signal again once it has drained: 143 (128 + SIGTERM) is a clean stop, as Docker reports it
if [ "$status" -ne 0 ] && [ "$status" -ne 143 ] || ! grep -q "every queue drained" "$work/serve.log"; then
  tail -5 "$work/serve.log" >&2
  echo "[image-check] FAILED: ctr serve exited $status after SIGTERM" >&2
  exit 1
fi
[ "$RUNTIME" = gpu ] && ran="no GPU here unless a driver was found: the service fell back to the CPU" \
  || ran="the CUDA stage: make image-check IMAGE_RUNTIME=gpu"
step "SIGTERM: drained, exited $status. The $RUNTIME image's steps pass ($ran)."
