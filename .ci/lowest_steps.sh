#!/usr/bin/env bash
# The lower bounds pyproject.toml declares, checked (`make lowest-check`): a fresh venv holding the OLDEST
# version of every direct dependency they allow (uv's --resolution lowest-direct over the cpu, train, dev
# and grpc extras; torch held at constraints.txt's pin, its own bound not checked), then the tests on it.
# Arguments go to pytest (default: the whole suite). The venv is left at $LOWEST_VENV (default: a new
# temporary folder) and its versions are printed first.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${LOWEST_VENV:-$(mktemp -d)/venv}
# uv reads neither pip.conf nor pip's variables: those set are passed on (this machine keeps torch's CPU
# build in PIP_FIND_LINKS)
[ -n "${PIP_FIND_LINKS:-}" ] && export UV_FIND_LINKS="$PIP_FIND_LINKS"
[ -n "${PIP_INDEX_URL:-}" ] && export UV_DEFAULT_INDEX="$PIP_INDEX_URL"
[ -n "${PIP_EXTRA_INDEX_URL:-}" ] && export UV_INDEX="$PIP_EXTRA_INDEX_URL"
[ -n "${PIP_CERT:-}" ] && export SSL_CERT_FILE="$PIP_CERT"
"$PYTHON" -m venv "$VENV"
# torch as `make` installs it (pip with this machine's settings and the pin: the CPU build), then held at that
# exact build: lowest-direct reaches torch too, and took PyPI's plain 2.13.0, which sorts below the local
# 2.13.0+cpu, with CUDA's libraries (a 5 GB venv)
"$VENV/bin/python" -m pip install --quiet uv torch -c constraints.txt
TORCH=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')
{ grep -v '^torch==' constraints.txt; echo "torch==$TORCH"; } > "$VENV/overrides.txt"
"$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --resolution lowest-direct \
    --override "$VENV/overrides.txt" -e '.[cpu,train,dev,grpc]'
echo "lowest-direct versions in $VENV:"
"$VENV/bin/uv" pip freeze --python "$VENV/bin/python" | grep -v '^-e ' | tr '\n' ' '
echo
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
