#!/usr/bin/env bash
# A checkout of this commit whose service Python on /v1/score's hot path is compiled to C by mypyc, for
# `ctr bench serve --service-root DIR` and `ctr bench ab --service-root DIR` (docs/serving-log.md, "The
# service's own Python compiled (mypyc): tried, not kept"). A scratch build, not a way to install.
#
#   bash reports/mypyc_scratch.sh DIR
#
# DIR: a new folder (the clone, its mypy venv under DIR/.mypyc-venv, the extension modules beside the
# sources they replace; Python imports an extension module before a source of the same name). Needs a C
# compiler and the package index (mypy). Third-party imports are typed Any (--ignore-missing-imports),
# and the encoder's `float(...)` of a `str | float | None` is let through (--disable-error-code arg-type).
# Left as Python: the pydantic models' modules (service/http/errors.py, body.py: mypyc classes can't have
# a metaclass), service/models/scoring_model.py (its base class is Python: "attribute '__dict__' of
# 'type' objects is not writable" at import), service/http/protocol.py (compiled, every connection was reset:
# its class body's `sweep_interval(header_timeout_s, ...)` reads names mypyc does not bind there, a
# KeyError at each connection; with literals instead the protocol still answered nothing; not chased).
set -euo pipefail
dir=${1:?usage: bash reports/mypyc_scratch.sh DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
git clone -q "$here" "$dir"
cd "$dir"
"$python" -m venv .mypyc-venv
.mypyc-venv/bin/pip install -q mypy "setuptools>=77"
modules=(
    service/score/endpoint.py service/score/features.py service/score/pipeline.py
    service/batching/batcher.py service/batching/policy.py service/batching/client.py
    service/models/snapshot.py service/metrics.py common/encoder.py
)
.mypyc-venv/bin/mypyc --ignore-missing-imports --disable-error-code arg-type "${modules[@]}" > mypyc.log 2>&1 \
    || { tail -20 mypyc.log; exit 1; }
PYTHONPATH=$dir "$python" - <<'EOF'
import importlib

for name in ("service.score.endpoint", "service.score.pipeline", "service.batching.batcher", "common.encoder"):
    module = importlib.import_module(name)
    assert module.__file__.endswith(".so"), module.__file__
    print(name, "compiled:", module.__file__)
EOF
