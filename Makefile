# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Runs of every (engine, N) in the PDP benchmark; the round with the median p50 is kept.
PDP_ROUNDS ?= 3

.PHONY: demo serve test lint bench venv clean chromium screenshots api-docs

venv: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev,bench]'
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

# The admin GUI's browser tests drive Debian's chromium: installed here when missing and
# root (elsewhere they skip, and fail under CI=true).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the browser tests"; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else echo "chromium is missing (apt-get install chromium): the browser tests will skip"; fi; }

# Two pytest workers (pytest-xdist): the suite's services (brokers, servers, databases)
# are per test session, on free ports and fresh databases, so the workers share nothing.
test: lint chromium
	$(BIN)/python -m pytest -q -n 2

# The README's screenshots of the admin GUI, made by its browser tests.
screenshots: venv chromium
	PBGM_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q tests/admin/test_browser.py

# The API reference (pdoc) of the public modules, rendered to build/api/index.html.
API_MODULES := pbgm pbgm.embed pbgm.model pbgm.errors pbgm.pdp pbgm.pep pbgm.pip pbgm.pap \
	pbgm.access pbgm.store pbgm.bundle pbgm.policy pbgm.flexoffer pbgm.events pbgm.loader \
	pbgm.bus pbgm.codecs pbgm.messages pbgm.testing pbgm.api pbgm.ops adapters controls

api-docs: venv
	$(BIN)/python -m pdoc --docformat markdown --output-directory build/api $(API_MODULES)

bench: venv
	$(BIN)/python -m benchmarks.pdp --rounds $(PDP_ROUNDS)
	$(BIN)/python -m benchmarks.controls
	$(BIN)/python -m benchmarks.pmu
	$(BIN)/python -m benchmarks.api
	$(BIN)/python -m benchmarks.bus
	$(BIN)/python -m benchmarks.admin
	$(BIN)/python -m benchmarks.devices
	$(BIN)/python -m benchmarks.xacml
	$(BIN)/python -m benchmarks.peers

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo.db*
