# The two commands a user needs are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser run test test-fast lint format bench bench-delivery bench-memory bench-backfill bench-dlq bench-arrivals test-faults clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Debian's chromium, which the admin page's end-to-end test drives through Playwright.
## Needs root (CI is root); Playwright's own browser download is never used.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

## Start the whole relay on embedded defaults (private Redis, sandbox, ingest, worker). Ctrl-C stops it.
run: install
	$(BIN)/cmrelay run

## Lint, type-check and run the whole test suite.
test: install lint browser
	$(BIN)/python -m pytest tests -m "not faults"

test-fast: install browser
	$(BIN)/python -m pytest tests -m "not slow and not faults" -x -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-faults: install
	$(BIN)/python -m pytest tests -m faults

bench: install
	$(BIN)/python bench/ingest.py

## Delivery vs a naive baseline on the sandbox, about 11 min (BENCH_ARGS="--scale 0.25" to run smaller).
bench-delivery: install
	$(BIN)/python bench/delivery.py $(BENCH_ARGS)

## Ingest and worker RSS over a long run (BENCH_ARGS="--events 100000" to run smaller).
bench-memory: install
	$(BIN)/python bench/memory.py $(BENCH_ARGS)

## Backfill: 1M events read and queued on one core, RSS; live latency while a backfill fills
## the 40 req/s ceiling; a few minutes (BENCH_ARGS="--scale 0.1" to run smaller).
bench-backfill: install
	$(BIN)/python bench/backfill.py $(BENCH_ARGS)

## Arrival spacing at ChartMogul during a backlog: how close the limiter comes to 40 in 1 s.
bench-arrivals: install
	$(BIN)/python bench/arrivals.py $(BENCH_ARGS)

## DLQ list/stats at 1k/10k/100k dead letters, about 20 s (BENCH_ARGS="--sizes 1000,10000").
bench-dlq: install
	$(BIN)/python bench/dlq.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
