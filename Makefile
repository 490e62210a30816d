# Two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Stamps make re-runs cheap: reinstall only when pyproject.toml changes.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-fast lint typecheck pytest system-deps clean
# Parallel test processes (pytest-xdist); each has its own PostgreSQL server and model. Files
# stay whole on one process (--dist loadfile): module fixtures (the browser site) are built once.
PYTEST_WORKERS ?= auto
# The inner loop: everything but what needs a browser, PostgreSQL or the model, or is slow.
FAST_MARKERS := not slow and not postgres and not browser and not model

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/confluence-rag demo

# System packages the browser tests need (Debian chromium); installed only when missing.
system-deps:
	@bash scripts/system-deps.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP) system-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

# The whole suite, as CI runs it (.ci/run).
test: lint typecheck pytest

# Under 2 minutes, for the inner loop; `make test` stays the one that counts.
test-fast: $(DEV_STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -m "$(FAST_MARKERS)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
