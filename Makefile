# Two commands on a fresh machine:  `make run`  (train if needed, then serve)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
# cpu: onnxruntime; gpu: onnxruntime-gpu (never both), e.g. `make run RUNTIME=gpu`
RUNTIME ?= cpu
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin

.PHONY: run test lint install clean proto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-$(RUNTIME): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(RUNTIME),train,dev]'
	touch $@

install: $(VENV)/.installed-$(RUNTIME)

run: install
	$(BIN)/ctr prepare
	CTR_HOST=$(HOST) CTR_PORT=$(PORT) $(BIN)/ctr serve

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) artifacts .pytest_cache .ruff_cache

# The KServe V2 gRPC messages: service/v2/grpc/inference.proto compiled to the descriptor set that
# service/v2/grpc/messages.py loads (committed)
proto: install
	$(BIN)/python -m grpc_tools.protoc -I service/v2/grpc --descriptor_set_out=service/v2/grpc/inference.desc service/v2/grpc/inference.proto
