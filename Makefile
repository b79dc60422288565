# sipas-bot: `make run` sets up and serves on SQLite, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install dev clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

.env: | $(VENV)/.installed
	$(BIN)/sipas-bot init-env

run: $(VENV)/.installed .env
	$(BIN)/sipas-bot db upgrade
	$(BIN)/sipas-bot units import examples/units.yaml
	$(BIN)/sipas-bot serve

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite on both cores (pytest-xdist). One file: .venv/bin/pytest tests/test_x.py
test: lint
	$(BIN)/pytest -n 2

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (issue 6; docs/benchmarks.md): about 15 min, BENCH_QUICK=1 for a 1-2 min smoke run.
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG_URL) and, preferably, wrk (apt-get install wrk).
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.run_all
