# Two commands on a fresh machine: `make run` serves Hub on its embedded default (SQLite,
# in-process workers); `make test` runs ruff, mypy and the whole suite. Both build .venv first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test lint bench clean chromium compose-check fuzz

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Hub needs Python 3.11 or newer; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

# The virtualenv with Hub in it, for the quickstart's `.venv/bin/hub` before the server runs.
install: $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/hub serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The browser tests drive Debian's Chromium; install it when it is missing (root, or sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q chromium >/dev/null || $$SUDO sh -c 'apt-get update -q && apt-get install -y -q chromium' >/dev/null || \
		echo "could not install chromium: the browser tests will say so"; }

# docker/compose.yaml must stay valid: checked with `docker compose` or Debian's docker-compose.
# Locally a missing tool is reported and skipped; on CI (CI=true) it is a failure.
compose-check:
	@if docker compose version >/dev/null 2>&1; then DC="docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then DC=docker-compose; \
	elif [ "$$CI" = true ]; then echo "compose-check: CI needs docker compose or docker-compose"; exit 1; \
	else echo "compose-check: skipped, neither docker compose nor docker-compose is installed"; exit 0; fi; \
	HUB_SECRET_KEY=check HUB_HASH_KEY=check $$DC -f docker/compose.yaml config -q && \
	echo "compose-check: docker/compose.yaml is valid"

# The suite in three test processes (pytest-xdist; most tests wait on sockets, browsers and
# subprocesses, so even two cores keep three busy), then the tests that measure time or load
# (marker `serial`, tests/conftest.py) alone. Both parts always run; either failing fails the
# target. Exit 5 is "nothing of this part selected". The slowest tests are listed at the end.
TEST_PROCESSES ?= 3

test: lint chromium compose-check
	@status=0; \
	$(BIN)/pytest -n $(TEST_PROCESSES) -m "not serial" --durations=15 $(PYTEST_ARGS) || [ $$? -eq 5 ] || status=1; \
	$(BIN)/pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ] || status=1; \
	exit $$status

# Every benchmark, then one report of what they wrote to bench/results/ (REPORT.md, report.json)
# with the machine; the micro-benchmarks (MIME, render, webhook and SMS sends) only print.
# PostgreSQL and Redis for the scale-out rows (the machine's own servers by default).
BENCH_PG    ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
BENCH_REDIS ?= redis://127.0.0.1:6379/14

bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q wrk >/dev/null; }
	$(BIN)/python bench/import_contacts.py
	$(BIN)/python bench/fanout.py --recipients 100000
	$(BIN)/python bench/fanout.py --recipients 100000 --mix email=1
	for n in 1 2 4; do $(BIN)/python bench/fanout.py --recipients 100000 \
		--database-url $(BENCH_PG) --broker-url $(BENCH_REDIS) --workers $$n || exit 1; done
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/api_load.py --database-url $(BENCH_PG) --broker-url $(BENCH_REDIS)
	$(BIN)/python bench/tracking_redirect.py
	$(BIN)/python bench/selfservice.py
	$(BIN)/python bench/campaign.py
	$(BIN)/python bench/digest.py
	$(BIN)/python bench/client_events.py
	$(BIN)/python bench/manager_figures.py
	$(BIN)/python bench/manager_figures.py --database-url $(BENCH_PG)
	$(BIN)/python bench/alternatives.py
	$(BIN)/python bench/mime_build.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/tracking_rewrite.py
	$(BIN)/python bench/webhook_send.py
	$(BIN)/python bench/twilio_send.py
	$(BIN)/python bench/report.py

# A longer schemathesis pass than CI's, for a nightly job: ~35,000 cases per database.
fuzz: $(VENV)/.installed-dev
	HUB_FUZZ_EXAMPLES=250 $(BIN)/pytest -m fuzz -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
