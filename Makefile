# Quick start: `make run` runs the product (sandbox Kitsu, web, worker, beat); `make test` runs
# every test. Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
SANDBOX_PORT ?= 8001
WEB_PORT ?= 8000

.PHONY: run test test-django6 bench lint format sandbox clean

$(BIN)/.runtime-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev-installed: requirements.txt requirements-dev.txt $(BIN)/.runtime-installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The whole product on one machine: SQLite, Celery on kombu's filesystem transport, no Redis.
run: export ENV_FILE = demo.env
run: export KITSU_API_URL = http://127.0.0.1:$(SANDBOX_PORT)/api/edge
run: export KITSU_OAUTH_URL = http://127.0.0.1:$(SANDBOX_PORT)/api/oauth
run: $(BIN)/.runtime-installed
	$(PY) manage.py migrate --no-input
	$(PY) manage.py kitsu_demo_setup --web-port $(WEB_PORT) --sandbox-port $(SANDBOX_PORT)
	SANDBOX_PORT=$(SANDBOX_PORT) WEB_PORT=$(WEB_PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile.dev start

test: $(BIN)/.dev-installed
	scripts/ensure-services
	scripts/ensure-chromium
	scripts/ensure-axe
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache
	ENV_FILE=tests/test.env $(BIN)/pytest -n 2 $(PYTEST_ARGS)

# The same suite on Django 6.x, which needs Python 3.12+ (PYTHON312 names the interpreter).
# The first Python 3.12 that runs (a pyenv shim may exist without a 3.12 selected).
PYTHON312 ?= $(or $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do $$p -c '' 2>/dev/null && { echo $$p; break; }; done),python3.12)
test-django6:
	test -x .venv-django6/bin/python || $(PYTHON312) -m venv .venv-django6
	.venv-django6/bin/python -m pip install --quiet -r requirements-dev.txt
	# The pinned 5.2 first, then Django 6 over it: one command with both pins cannot resolve.
	.venv-django6/bin/python -m pip install --quiet --upgrade "Django>=6,<7"
	scripts/ensure-services
	ENV_FILE=tests/test.env .venv-django6/bin/pytest -n 2 $(PYTEST_ARGS)

# Every benchmark at full size (about 15 minutes; bench/README.md has the figures).
bench: $(BIN)/.dev-installed
	scripts/ensure-services
	$(PY) -m bench.import_library --repeat 3
	$(PY) -m bench.incremental
	$(PY) -m bench.export
	$(PY) -m bench.latency --repeat 3
	$(PY) -m bench.fleet --rates 10,50,5
	$(PY) -m bench.mapping_datasets
	$(PY) -m bench.webhooks
	$(PY) -m bench.list_page

lint: $(BIN)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache

format: $(BIN)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

sandbox: $(BIN)/.runtime-installed
	ENV_FILE=demo.env $(PY) manage.py kitsu_sandbox --port $(SANDBOX_PORT)

clean:
	rm -rf var db.sqlite3 .pytest_cache .ruff_cache .hypothesis
