# `make test` builds .venv (torch first, so pip takes the CPU wheel) and runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test bench example clean

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

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/reward.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build src/*.egg-info

# The main job until `rlt demo` lands: build the toy world and score explanations of every kind.
example: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/rlt toy init --output runs/toy
	HF_HUB_OFFLINE=1 $(BIN)/rlt score --teacher runs/toy/base_model --student runs/toy/base_model \
		--input runs/toy/data/explanations_by_kind.jsonl --output runs/toy/scored.jsonl
