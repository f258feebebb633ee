# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Runs of every (engine, N) in the PDP benchmark; the round with the median p50 is kept.
PDP_ROUNDS ?= 3

.PHONY: demo serve test lint bench venv clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: venv
	bash examples/demo.sh
	bash examples/scenario.sh

serve: venv
	bash examples/serve.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m benchmarks.pdp --rounds $(PDP_ROUNDS)
	$(BIN)/python -m benchmarks.controls
	$(BIN)/python -m benchmarks.pmu
	$(BIN)/python -m benchmarks.api
	$(BIN)/python -m benchmarks.bus
	$(BIN)/python -m benchmarks.devices

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo.db*
