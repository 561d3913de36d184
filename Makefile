# One command runs what CI runs: `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint typecheck unit run bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check watcher tests bench
	$(BIN)/ruff format --check watcher tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest --cov --cov-report=term -p no:cacheprovider

test: lint typecheck unit

run: $(STAMP)
	$(BIN)/watcher demo

bench: $(STAMP)
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/deliver.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/load.py --fast-lane

soak: $(STAMP)
	$(BIN)/python -m tests.reliability.soak --kills 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
