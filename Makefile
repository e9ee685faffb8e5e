# The few commands a newcomer needs.  `make demo` and `make test` work on a fresh clone.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip install -q --disable-pip-version-check

.PHONY: demo test lint fmt typecheck bench fuzz catalog docs template constraints clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed-app: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -c constraints.txt -e '.[dev]'
	touch $@ $(VENV)/.installed-app

## demo: install and run the end-to-end demo on the embedded default (local lake + DuckDB)
demo: $(VENV)/.installed-app
	$(BIN)/auditcorr demo

## test: install the dev tools and run lint, type checks, template checks and the whole test suite
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	bash scripts/check-template.sh
	$(BIN)/python -m pytest -q -n auto

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff format .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

## bench: the performance harness (not part of the tests' time budget)
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks

## fuzz: coverage-guided fuzzing of the parsers (atheris)
fuzz: $(VENV)/.installed-dev
	$(PIP) atheris
	$(BIN)/python fuzz/fuzz_parsers.py -atheris_runs=200000

## catalog: regenerate docs/tables.md and template.yaml's Glue tables/views from the table declarations
## (layers/core/auditcorr/schemas.py); a test fails when they are stale
catalog: $(VENV)/.installed-dev
	$(BIN)/python -m scripts.catalog

docs: catalog

template: $(VENV)/.installed-dev
	bash scripts/check-template.sh

## constraints: re-pin the tested versions from the current dev venv
constraints: $(VENV)/.installed-dev
	{ echo "# Versions the test suite last passed with (pip constraints). Regenerate: make constraints"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v -i '^auditcorr'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache lake
