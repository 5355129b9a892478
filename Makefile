# Prompt Workbench: every target sets up what it needs and is quick when
# that is already done (stamp files; pip reuses its cached llama.cpp build;
# models are verified once and then skipped).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# llama-cpp-python has no binary wheel on PyPI: pip compiles llama.cpp for
# the CPU it builds on (-march=native). pip's own cache would hand that wheel
# to another CPU (same image, other host), where it dies with SIGILL. So the
# build is kept per kind of CPU: the key is a hash of the CPU's name and the
# feature flags llama.cpp's kernels use (python -m workbench.engine.running.cpu).
CPU_KEY       := $(shell $(PYTHON) -m workbench.engine.running.cpu)
LLAMA_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
WHEEL_CACHE   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/workbench/wheels
LLAMA_WHEELS  := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_VERSION)-cpu-$(CPU_KEY)
STAMP         := $(VENV)/.installed-$(CPU_KEY)

.DEFAULT_GOAL := help
.PHONY: help run test lint typecheck models bench bench-native clean setup

help:  ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LLAMA_WHEELS): | $(BIN)/python
	@echo "Compiling llama-cpp-python $(LLAMA_VERSION) for this CPU (key $(CPU_KEY)): several minutes, once per kind of CPU..."
	rm -rf $@.tmp
	$(BIN)/python -m pip wheel --no-deps --no-cache-dir --progress-bar off -w $@.tmp 'llama-cpp-python==$(LLAMA_VERSION)'
	mv $@.tmp $@

$(STAMP): pyproject.toml $(LLAMA_WHEELS) | $(BIN)/python
	@echo "Installing Prompt Workbench and its dependencies..."
	$(BIN)/python -m pip install --progress-bar off --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(BIN)/python -m pip install --progress-bar off --find-links $(LLAMA_WHEELS) -e '.[dev]'
	echo $(CPU_KEY) > $(VENV)/llama-cpu-key
	rm -f $(VENV)/.installed*
	@touch $@

setup: $(STAMP)  ## Create .venv and install the package

models: $(STAMP)  ## Install the two default models and check they run on this CPU
	$(BIN)/workbench models install-defaults
	@# A quick self-check (a few seconds): each default model loads and decodes
	@# in a worker with the settings in force. A failure is reported, not fatal:
	@# the app still opens and says in each panel what went wrong.
	-$(BIN)/workbench doctor

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
