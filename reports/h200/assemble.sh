#!/bin/bash
# Sourced by run1.sh to run5.sh (README.md): onnxruntime-gpu 1.31.1 (CUDA 13) put together in
# SITE from the parts carried in .gpu_a/ and .gpu_b/, first on sys.path, and LD_LIBRARY_PATH pointed at the
# machine's CUDA 13 libraries. The runners' arguments: PYTHON SITE CUDA_SO_XZ OUT STEP_S [--quick].
set -u
PY=$1 SITE=$2 CUDA_XZ=$3 OUT=$4 STEP=$5 QUICK=${6:-}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
log() { echo "[$(($(date +%s) - T0)) s] $*"; }

assemble() {
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
}

# The machine's NVIDIA wheels (its PyTorch's nvidia/cu13 and nvidia/cudnn) made SITE's, where the gpu extra
# installs them, and the library path assemble() set dropped: the service's load_cuda_libraries then finds
# them as on a `pip install .[gpu]` (run4.sh, run5.sh). Fails where the machine has no such layout.
use_wheel_path() {
    CUBLAS=$(find /opt /usr/local /usr/lib /usr/lib64 /tmp -xdev -path '*/nvidia/cu13/lib/libcublasLt.so.13' 2>/dev/null | head -1)
    NVIDIA_ROOT=${CUBLAS%/cu13/lib/libcublasLt.so.13}
    if [ -z "$CUBLAS" ] || [ ! -f "$NVIDIA_ROOT/cudnn/lib/libcudnn.so.9" ]; then
        log "no nvidia/cu13 + nvidia/cudnn wheel layout on this machine"
        return 1
    fi
    ln -sfn "$NVIDIA_ROOT" "$SITE/nvidia"
    unset LD_LIBRARY_PATH
    log "SITE/nvidia -> $NVIDIA_ROOT; LD_LIBRARY_PATH unset"
}
