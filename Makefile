# Two commands matter: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install migrate clean deploy-check lock lock-check image-check rabbitmq

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs take the versions uv.lock pins (exported for pip to DEV_CONSTRAINTS by `make lock`):
# a new release of any package upstream cannot change what `make test` runs on.
DEV_CONSTRAINTS := dev-constraints.txt

$(STAMP): pyproject.toml $(DEV_CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(DEV_CONSTRAINTS) -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/orders serve --port 8000

migrate: $(STAMP)
	$(BIN)/orders migrate

lint: $(STAMP)
	$(BIN)/ruff check orders projections tests bench deployments
	$(BIN)/ruff format --check orders projections tests bench deployments
	$(BIN)/mypy orders projections tests bench deployments

# Renders every Kubernetes overlay and the Bitnami PostgreSQL chart and validates them offline
# (API and CRD schemas), checks the alert rules with promtool and runs tests/deployments.
# promtool comes from Debian's prometheus package, installed here as `make bench` installs wrk.
deploy-check: $(STAMP)
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		prometheus >/dev/null; } || \
		{ echo "deploy-check: promtool missing; apt-get install prometheus" >&2; exit 1; }
	ORDERS_VENV_BIN=$(BIN) bash deployments/check.sh
	$(BIN)/pytest -q tests/deployments

# The lock: uv.lock pins every package of every extra with its hashes; the image installs its
# runtime part (and the setuptools that builds our wheel), exported to IMAGE_REQUIREMENTS, and
# `make install` every extra, exported without hashes (pip takes none in a constraints file).
IMAGE_REQUIREMENTS := deployments/image/requirements.txt
EXPORT_LOCK := $(BIN)/uv export --quiet --frozen --no-emit-project --group build
EXPORT_DEV_LOCK := $(BIN)/uv export --quiet --frozen --no-emit-project --all-extras --no-hashes

# After any change to the dependencies in pyproject.toml: refresh the three files, and commit
# them.
# Needs only uv (at its locked version), not the whole install: pip could not install the
# dependencies just changed under the old pins.
$(BIN)/uv: | $(BIN)/python
	$(BIN)/pip install --quiet -c $(DEV_CONSTRAINTS) uv

lock: $(BIN)/uv
	$(BIN)/uv lock
	$(EXPORT_LOCK) > $(IMAGE_REQUIREMENTS).new && mv $(IMAGE_REQUIREMENTS).new $(IMAGE_REQUIREMENTS)
	$(EXPORT_DEV_LOCK) > $(DEV_CONSTRAINTS).new && mv $(DEV_CONSTRAINTS).new $(DEV_CONSTRAINTS)

lock-check: $(STAMP)
	@$(BIN)/uv lock --check && $(EXPORT_LOCK) | cmp -s - $(IMAGE_REQUIREMENTS) \
		&& $(EXPORT_DEV_LOCK) | cmp -s - $(DEV_CONSTRAINTS) || { \
		echo "lock-check: uv.lock, $(IMAGE_REQUIREMENTS) and $(DEV_CONSTRAINTS) are not what" \
			"'make lock' makes of pyproject.toml: run 'make lock' and commit them" >&2; exit 1; }
	@echo "lock-check: uv.lock, $(IMAGE_REQUIREMENTS) and $(DEV_CONSTRAINTS) match pyproject.toml"

# Builds the image with podman and runs it read-only, as uid 10001, against a PostgreSQL on
# this machine (tests/image/run.py). Without root it says so and skips.
image-check: $(STAMP)
	$(BIN)/python -m tests.image.run

# The publishing tests run a throwaway node of Debian's rabbitmq-server (tests/support/broker.py),
# installed here when missing as promtool is.
rabbitmq:
	@test -x /usr/lib/rabbitmq/bin/rabbitmq-server || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		rabbitmq-server >/dev/null; } || \
		{ echo "rabbitmq: rabbitmq-server missing; apt-get install rabbitmq-server" >&2; exit 1; }

test: lint lock-check deploy-check image-check rabbitmq
	$(BIN)/pytest -q --ignore=tests/deployments

clean:
	rm -rf $(VENV) .orders .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: bench bench-feed bench-growth bench-profile wrk
# The API benchmark (bench/api.py) with the event feed's delivery under load (bench/feed.py),
# and creates on an empty vs a 5-million-event store (bench/growth.py). wrk comes from Debian when we may install it; without it the benchmarks
# fall back to their Python load generator and say so.
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq wrk >/dev/null; } || \
		echo "bench: wrk could not be installed; using the Python load generator"

bench: $(STAMP) wrk rabbitmq
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.feed
	$(BIN)/python -m bench.publish

bench-feed: $(STAMP) wrk
	$(BIN)/python -m bench.feed

bench-growth: $(STAMP) wrk
	$(BIN)/python -m bench.growth

bench-profile: $(STAMP)
	$(BIN)/python -m bench.profile

.PHONY: load postman
# The locust check (tests/load/run.py): 50 users for LOAD_SECONDS (default 60) against
# `orders serve --workers 2` on a fresh embedded database, then the database is verified.
load: $(STAMP)
	$(BIN)/python -m tests.load.run

# The Postman collection, run by newman (installed into node_modules/ on first use): each folder
# against a service started for it on a fresh embedded database, or the folder for AUTH (none,
# the default, or jwt) against BASE_URL when it is given.
postman: $(STAMP)
	@test -x node_modules/.bin/newman || npm install --no-save --no-audit --no-fund newman@6
	$(BIN)/python -m tests.postman.run $(if $(BASE_URL),--base-url $(BASE_URL)) $(if $(AUTH),--auth $(AUTH))
