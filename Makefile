# The two commands a new user needs are `make run` and `make test`; both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
BIN := $(VENV)/bin

.PHONY: install run test lint typecheck pytest bench soak fuzz clean

install: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock scripts/install-system.sh | $(UV)
	bash scripts/install-system.sh
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --all-extras --quiet
	touch $@

run: install
	$(BIN)/connectors demo

lint: install
	$(BIN)/ruff check src tests benchmarks soak docs/examples
	$(BIN)/ruff format --check src tests benchmarks soak docs/examples

typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --strict tests/typing

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

soak: install
	$(BIN)/python soak/run.py $(SOAK_ARGS)

fuzz: install
	FUZZ_EXAMPLES=10000 $(BIN)/pytest tests/fuzz -q -p no:randomly --timeout=0

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache
