# opsdesk: `make demo` and `make test` work on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install demo serve test soak lint typecheck services bench docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# the browser tests drive Debian's chromium (playwright never downloads one here)
	@test -x /usr/bin/chromium || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Build a 30-day demo into var/opsdesk.db and serve it on http://127.0.0.1:8000
demo: install
	$(BIN)/opsdesk demo --reset
	$(BIN)/opsdesk serve

serve: install
	$(BIN)/opsdesk serve

## Lint, type-check and run the whole suite on SQLite and PostgreSQL
test: install services
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src/opsdesk
	OPSDESK_REQUIRE_POSTGRES=1 OPSDESK_REQUIRE_REDIS=1 OPSDESK_REQUIRE_BROWSER=1 $(BIN)/pytest

## The hypothesis state machines with SOAK_FACTOR x the examples, shrinking on, a random
## seed per run (printed), SOAK_RUNS times: `make soak SOAK_RUNS=20`
SOAK_TESTS := tests/domain/test_ownership_properties.py tests/routing/test_properties.py \
	tests/jobs/test_outbox_properties.py tests/sla/test_clocks_properties.py
SOAK_FACTOR ?= 5
SOAK_RUNS ?= 1
soak: install services
	@for run in $$(seq 1 $(SOAK_RUNS)); do \
	  seed=$$(od -An -N8 -tu8 /dev/urandom | tr -d ' '); \
	  echo "soak run $$run/$(SOAK_RUNS): --hypothesis-seed=$$seed"; \
	  OPSDESK_REQUIRE_POSTGRES=1 OPSDESK_HYPOTHESIS_PROFILE=soak OPSDESK_SOAK_FACTOR=$(SOAK_FACTOR) \
	    $(BIN)/pytest -p no:cacheprovider --hypothesis-seed=$$seed $(SOAK_TESTS) || exit 1; \
	done

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy --strict src/opsdesk

# PostgreSQL must be up for the PostgreSQL leg of the suite; start the local cluster if not.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@# Redis backs the shared rate limits (tests/api/test_ratelimit.py); start it if not up
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  echo "starting Redis"; \
	  command -v redis-server >/dev/null || apt-get install -y -q redis-server >/dev/null; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' >/dev/null; }

## Throughput and replay benchmarks; figures go to docs/benchmarks.md by hand
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

# wrk (a C HTTP load generator) drives the API benchmark, so the clients leave the CPU to the server
bench: $(BENCH_STAMP) services
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
	$(BIN)/python -m bench

## Regenerate docs/events.md and docs/configuration.md from the code
docs: install
	$(BIN)/python -m opsdesk.docsgen

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
