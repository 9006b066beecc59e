# Two commands: `make demo` (set up and run the demo on embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: install demo demo-stop test lint bench calibrate
install: $(BIN)/.installed

# The demo leaves the embedded MongoDB, PostgreSQL and a local Prefect server running for the
# commands it prints (it says so); `make demo-stop` (= mlmon services stop) stops them.
demo: $(BIN)/.installed
	$(BIN)/mlmon demo

demo-stop: $(BIN)/.installed
	$(BIN)/mlmon services stop

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(BIN)/.installed
	$(BIN)/python tests/benchmarks/bench_pipeline.py
	$(BIN)/python tests/benchmarks/bench_workers.py

calibrate: $(BIN)/.installed
	$(BIN)/python tests/benchmarks/calibrate_drift.py
