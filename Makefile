# `make test` builds .venv (torch first, so pip takes the CPU wheel) and runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast bench demo clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Unit and property tests only (no end-to-end command runs): under 2 minutes.
test-fast: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/reward.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build src/*.egg-info

# The main job: the paper's claim in miniature, offline on a CPU (report in runs/demo/report).
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/rlt demo --quick true --output_dir runs/demo
