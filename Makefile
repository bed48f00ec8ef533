# The two commands a user needs are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser run test test-fast lint format bench test-faults clean

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
