#!/usr/bin/env bash
# The Dockerfile's steps for the CPU image, run without Docker (none runs on the development machines):
# a wheel of the project, installed with the `cpu` extra into a fresh virtual environment (no torch may
# come with it), the image's import check, then `ctr serve` as the image runs it (JSON logs, the models
# copied to a repository of its own), its HEALTHCHECK command, and SIGTERM: a clean exit.
#   make image-check            (MODELS=models by default: a repository with the default models)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MODELS=${MODELS:-models}
CTR=${CTR:-.venv/bin/ctr}  # the development install's, for a request body
PORT=${PORT:-8792}
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

step "service stage: a fresh venv, pip install '$(basename "$wheel")[cpu]'"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-cache-dir "${wheel}[cpu]" 2>&1 | grep -v "^WARNING: Location" || true
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "[image-check] FAILED: torch came with the service's install" >&2
  exit 1
fi
(cd "$work" && venv/bin/python -c "import service.app, onnxruntime; print(onnxruntime.get_available_providers())")

step "CMD: ctr serve (CTR_LOG_FORMAT=json, CTR_MODEL_REPOSITORY a copy of $MODELS)"
cp -r "$MODELS" "$work/models"
(cd "$work" && exec env -i PATH="$work/venv/bin:/usr/bin:/bin" CTR_HOST=127.0.0.1 CTR_PORT="$PORT" \
  CTR_MODEL_REPOSITORY="$work/models" CTR_LOG_FORMAT=json PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
  venv/bin/ctr serve > "$work/serve.log" 2>&1) &
server=$!
for _ in $(seq 1 240); do
  if (cd "$work" && CTR_PORT="$PORT" venv/bin/python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"CTR_PORT\"]}/v2/health/ready', timeout=2)") 2>/dev/null; then
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
head -1 "$work/serve.log" | "$work/venv/bin/python" -c "import json, sys; json.loads(sys.stdin.read())" \
  || { echo "[image-check] FAILED: the log is not JSON lines" >&2; exit 1; }
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
step "SIGTERM: drained, exited $status. The image's steps pass (the CUDA stage not exercised)."
