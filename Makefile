# Two commands: `make demo` (set up and run the demo on embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: install demo test lint bench calibrate
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/mlmon demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(BIN)/.installed
	$(BIN)/python tests/benchmarks/bench_pipeline.py

calibrate: $(BIN)/.installed
	$(BIN)/python tests/benchmarks/calibrate_drift.py
