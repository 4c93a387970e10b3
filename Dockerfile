# The scoring service image.
#   CPU (default):  docker build -t debiased-ctr .
#   CUDA:           docker build --build-arg RUNTIME=gpu -t debiased-ctr:gpu .
#   gRPC too:       docker build --build-arg EXTRAS=grpc -t debiased-ctr .   (then -e CTR_GRPC_PORT=8001 -p 8001:8001)
# Models are mounted (docker run -v $PWD/models:/srv/models ...) or baked in with
# --build-arg MODELS=models (after `ctr prepare`). The image holds no torch: `.[cpu]` / `.[gpu]` (and EXTRAS) only.
ARG RUNTIME=cpu
ARG PYTHON_VERSION=3.11

# -- build: a wheel of the project, so the runtime stage needs no source tree -----------------------
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common ./common
COPY service ./service
COPY cli ./cli
COPY clients ./clients
COPY training ./training
RUN pip wheel --no-deps --wheel-dir /wheels .

# -- runtime bases: both on python-slim. The `gpu` extra brings CUDA 13 and cuDNN 9 as NVIDIA's wheels
# (onnxruntime-gpu[cuda,cudnn]), which the service preloads; the host gives the driver (580 or newer)
# through the NVIDIA container toolkit: docker run --gpus all ...
FROM python:${PYTHON_VERSION}-slim AS base-cpu
ENV VENV=/opt/venv
RUN python -m venv $VENV

FROM base-cpu AS base-gpu
# what NVIDIA's CUDA images set: the container toolkit mounts the driver's compute libraries
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

# -- the service ------------------------------------------------------------------------------------
FROM base-${RUNTIME} AS service
ARG RUNTIME
ARG EXTRAS=
ARG MODELS=
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    CTR_HOST=0.0.0.0 \
    CTR_PORT=8000 \
    CTR_MODEL_REPOSITORY=/srv/models \
    CTR_LOG_FORMAT=json
COPY --from=build /wheels /wheels
# every dependency at the version locks/image-<runtime>.txt pins (`make image-lock` writes it): an image built
# next month installs what was checked (make image-check) instead of whatever is newest within pyproject's ranges
COPY locks/image-${RUNTIME}.txt /wheels/image-lock.txt
RUN WHEEL=$(ls /wheels/*.whl) \
 && pip install --no-cache-dir -c /wheels/image-lock.txt "${WHEEL}[${RUNTIME}${EXTRAS:+,${EXTRAS}}]" \
 && rm -rf /wheels \
 && python -c "import service.app, onnxruntime; print(onnxruntime.get_available_providers())" \
 && case ",${EXTRAS}," in *,grpc,*) python -c "import service.v2.grpc.server; print('gRPC: importable')" ;; esac
# a home of its own, writable: ONNX Runtime keeps an id under ~/.cache, and where it cannot (the home was
# root's /srv) it writes a warning line to stderr, outside the JSON log (CTR_LOG_FORMAT=json)
RUN useradd --system --uid 10001 --create-home --home-dir /home/ctr --shell /usr/sbin/nologin ctr \
 && mkdir -p /srv/models
# the baked models are root's, readable by all: the service reads them and cannot change what it serves
# (with polling on, a compromised process could have written a version for itself to load); a mounted
# repository keeps its own owner and modes
COPY ${MODELS:-pyproject.toml} /srv/baked/
RUN if [ -n "${MODELS}" ]; then cp -r /srv/baked/. /srv/models/ && chmod -R a+rX,go-w /srv/models; fi; rm -rf /srv/baked
USER ctr
WORKDIR /srv
EXPOSE 8000
# the gRPC port when CTR_GRPC_PORT turns it on (the EXTRAS=grpc build)
EXPOSE 8001
# python, not curl: the slim image has no curl, and this checks what the load balancer checks. It probes
# 127.0.0.1:$CTR_PORT, or [::1]:$CTR_PORT where CTR_HOST is an IPv6 address (::1 serves no IPv4 client; ::
# serves both): configure the image through CTR_PORT and CTR_HOST (docker run -e CTR_PORT=9000), not
# through ctr serve's flags (`ctr serve --port 9000` serves on 9000 and is marked unhealthy). Its copy in
# .ci/image_steps.sh is kept the same (tests/packaging/test_healthcheck.py)
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; host = '[::1]' if ':' in os.environ.get('CTR_HOST', '') else '127.0.0.1'; urllib.request.urlopen(f'http://{host}:{os.environ[\"CTR_PORT\"]}/v2/health/ready', timeout=2)"
# exec form: SIGTERM reaches uvicorn, which stops accepting and drains the queues before exiting
CMD ["ctr", "serve"]
