# Two commands on a fresh machine:  `make run`  (train if needed, then serve)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
# cpu: onnxruntime; gpu: onnxruntime-gpu (never both), e.g. `make run RUNTIME=gpu`
RUNTIME ?= cpu
OTHER_RUNTIME := $(if $(filter gpu,$(RUNTIME)),cpu,gpu)
# Both provide the `onnxruntime` module: switching RUNTIME in a venv removes both first (removing one alone
# would delete the files the other still needs), then installs the chosen one; the other's stamps go.
SWITCH_RUNTIME = if $(BIN)/python -m pip show -q $(if $(filter gpu,$(RUNTIME)),onnxruntime,onnxruntime-gpu) 2>/dev/null; \
	then $(BIN)/python -m pip uninstall --quiet -y onnxruntime onnxruntime-gpu; fi; \
	rm -f $(VENV)/.installed-$(OTHER_RUNTIME) $(VENV)/.installed-run-$(OTHER_RUNTIME)
# the image `make image-check` checks (cpu / gpu, and the Dockerfile's EXTRAS, e.g. grpc): its own fresh
# venv, whatever RUNTIME installed here
IMAGE_RUNTIME ?= cpu
IMAGE_EXTRAS ?=
# where torch's build comes from besides the configured indexes: PyPI's torch for Linux is its CUDA build (~5 GB
# with NVIDIA's libraries); `TORCH_INDEX=https://download.pytorch.org/whl/cpu make install` takes the CPU one
TORCH_INDEX ?=
TORCH_FROM := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
HOST ?= 127.0.0.1
PORT ?= 8000
# HOST as a URL writes it: an IPv6 address (HOST=::1, or [::1]) in brackets, where the echo said http://::1:8000
URL_HOST = $(if $(findstring :,$(HOST)),[$(patsubst [%],%,$(HOST))],$(HOST))
BIN := $(VENV)/bin
# `make test` runs the tests in this many pytest-xdist processes: one a CPU this process may use (its affinity,
# fewer under a container's CPU limit: service/cpus.py), at least 2 and at most 8 (each process builds the
# session fixtures it needs). Most tests wait on servers, sockets and
# clocks: on 2 cores, 2 processes took the suite from 8 min 36 s to 4 min 58 s, and 4 took 6 min 45 s. Then
# the tests marked `serial` (pyproject.toml), alone (under a second process, one failed 5 runs in 12), even
# when tests of the first pass failed (not when it was interrupted); the status is the first failure's. The
# second pass collects only the files the first found serial tests in (tests/conftest.py, TEST_SERIAL_FILES):
# collecting the whole suite again to read their marks took its one process 10.7 s of CPU, the three files
# 3.0 s (`pytest --collect-only -q -m serial [FILES]`, timed by time.process_time, load 10)
TEST_PROCESSES ?= $(shell $(PYTHON) -c 'from service.cpus import cpu_limit, usable_cpus; print(min(8, max(2, usable_cpus(cpu_limit()))))')

.PHONY: run test lint install clean docs-check image-check image-lock lowest-check proto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-$(RUNTIME): pyproject.toml constraints.txt | $(BIN)/python
	@$(SWITCH_RUNTIME)
	$(BIN)/python -m pip install --quiet $(TORCH_FROM) -c constraints.txt -e '.[$(RUNTIME),train,dev]'
	touch $@

install: $(VENV)/.installed-$(RUNTIME)

# `make run` installs only what it runs (no test tools) and leaves byte-compiling to Python's first import
# (pip's --no-compile: compiling every module of torch etc. up front cost ~30 s of CPU on 2 cores, most
# of it for modules never imported); it times each phase and prints a line for each: [1/3] install,
# [2/3] train + export the served models that have no version (in parallel processes), [3/3] serve.
$(VENV)/.installed-run-$(RUNTIME): pyproject.toml constraints.txt
	@echo "[1/3] install: $(VENV) with pip install -e '.[$(RUNTIME),train]' (~20 s on 2 cores) ..."
	@start=$$(date +%s) && \
	if [ ! -x $(BIN)/python ]; then $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet --upgrade pip; fi && \
	{ $(SWITCH_RUNTIME); } && \
	$(BIN)/python -m pip install --quiet --no-compile $(TORCH_FROM) -c constraints.txt -e '.[$(RUNTIME),train]' && \
	touch $@ && echo "[1/3] install done in $$(( $$(date +%s) - start )) s"

run: $(VENV)/.installed-run-$(RUNTIME)
	@$(BIN)/ctr prepare --step "[2/3]"
	@echo "[3/3] serve: ctr serve on http://$(URL_HOST):$(PORT) (loads and warms every model, then logs 'Application startup complete')"
	CTR_HOST=$(HOST) CTR_PORT=$(PORT) exec $(BIN)/ctr serve

# The curl examples of README.md and docs/*.md against the default models, served on a free loopback port.
docs-check: install
	$(BIN)/ctr prepare -r models --step "[docs-check]"
	$(BIN)/ctr docs-check

# The Dockerfile's stages without Docker (IMAGE_RUNTIME=cpu or gpu, IMAGE_EXTRAS=grpc): a wheel into a fresh venv (no torch), then `ctr serve` as the image runs it.
# The image's pins (the Dockerfile and image-check install with them): every dependency of the `cpu` (or `gpu`)
# and `grpc` extras at one version, resolved for every Python the project allows (uv's --universal); run it to
# take newer versions, then make image-check (and IMAGE_RUNTIME=gpu) before committing the files
image-lock: install
	$(BIN)/python -m pip install --quiet uv
	for runtime in cpu gpu; do \
		$(BIN)/uv pip compile --quiet pyproject.toml --extra $$runtime --extra grpc --universal --python-version 3.11 \
			-o locks/image-$$runtime.txt || exit 1; \
	done

image-check: install
	$(BIN)/ctr prepare -r "$${MODELS:-models}" --step "[image-check]"
	PYTHON=$(PYTHON) CTR=$(BIN)/ctr IMAGE_RUNTIME=$(IMAGE_RUNTIME) IMAGE_EXTRAS=$(IMAGE_EXTRAS) bash .ci/image_steps.sh

# The lower bounds of pyproject.toml: the tests on a fresh venv of the oldest versions they allow (torch held
# at constraints.txt's pin), with uv's --resolution lowest-direct; PYTEST_ARGS narrows the tests.
lowest-check:
	PYTHON=$(PYTHON) bash .ci/lowest_steps.sh $(PYTEST_ARGS)

# ruff's checks and its formatting, as the tests start with them
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	status=0; serial=$$(mktemp); \
	TEST_SERIAL_FILES=$$serial $(BIN)/python -m pytest -q -n $(TEST_PROCESSES) -m "not serial" || status=$$?; \
	[ $$status -gt 1 ] || $(BIN)/python -m pytest -q -m serial $$(cat $$serial) || { code=$$?; [ $$status -ne 0 ] || status=$$code; }; \
	rm -f $$serial; exit $$status

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache

# The KServe V2 gRPC messages and the health protocol's: service/v2/grpc/inference.proto and health.proto, each
# compiled to the descriptor set that service/v2/grpc/messages.py loads (committed)
proto: install
	for proto in inference health; do \
		$(BIN)/python -m grpc_tools.protoc -I service/v2/grpc --descriptor_set_out=service/v2/grpc/$$proto.desc \
			service/v2/grpc/$$proto.proto || exit 1; \
	done
