# Two commands matter: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install migrate clean deploy-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/orders serve --port 8000

migrate: $(STAMP)
	$(BIN)/orders migrate

lint: $(STAMP)
	$(BIN)/ruff check orders projections tests bench
	$(BIN)/ruff format --check orders projections tests bench
	$(BIN)/mypy orders projections bench

# Renders every Kubernetes overlay and validates it offline against the API schemas.
deploy-check: $(STAMP)
	ORDERS_VENV_BIN=$(BIN) bash deployments/check.sh

test: lint deploy-check
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .orders .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: bench bench-growth bench-profile wrk
# The API benchmark (bench/api.py) and creates on an empty vs a 5-million-event store
# (bench/growth.py). wrk comes from Debian when we may install it; without it the benchmarks
# fall back to their Python load generator and say so.
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq wrk >/dev/null; } || \
		echo "bench: wrk could not be installed; using the Python load generator"

bench: $(STAMP) wrk
	$(BIN)/python -m bench.api

bench-growth: $(STAMP) wrk
	$(BIN)/python -m bench.growth

bench-profile: $(STAMP)
	$(BIN)/python -m bench.profile

.PHONY: load postman
# The locust check (tests/load/run.py): 50 users for LOAD_SECONDS (default 60) against
# `orders serve --workers 2` on a fresh embedded database, then the database is verified.
load: $(STAMP)
	$(BIN)/python -m tests.load.run

# The Postman collection, run by newman (installed into node_modules/ on first use), against a
# service started on a fresh embedded database, or against BASE_URL when it is given.
postman: $(STAMP)
	@test -x node_modules/.bin/newman || npm install --no-save --no-audit --no-fund newman@6
	$(BIN)/python -m tests.postman.run $(if $(BASE_URL),--base-url $(BASE_URL))
