#!/usr/bin/env bash
# The prepared GPU check (about 8 minutes on one H100/H200; transformers only: no vLLM there).
#
#   bash benchmarks/gpu_check.sh prepare   # on the dev machine: wheels, Qwen2.5's tokenizer, sample rows -> .gpu_check/
#   bash benchmarks/gpu_check.sh           # on the GPU machine, with .gpu_check carried (device tool: carry [".gpu_check"])
#
# The GPU image has torch, transformers and accelerate but not trl or datasets, and no network: the wheels
# travel in .gpu_check/wheels (the versions seen working there), installed without dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=.gpu_check

if [ "${1:-}" = "prepare" ]; then
    PIP="${PIP:-.venv/bin/pip}"
    PY="${PY:-.venv/bin/python}"
    rm -rf "$DATA" && mkdir -p "$DATA/wheels"
    "$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 -d "$DATA/wheels" \
        trl==1.16.0 datasets==5.2.0 transformers==5.24.0 dill==0.4.1 multiprocess==0.70.19 \
        rich==15.0.0 markdown-it-py mdurl pygments pyyaml
    HF_HUB_OFFLINE=1 "$PY" benchmarks/gpu_check.py --prepare --data "$DATA"   # tokenizer and rows
    du -sh "$DATA"
    exit 0
fi

python3 -m pip install -q --no-deps --no-index "$DATA"/wheels/*.whl
PYTHONPATH=src HF_HUB_OFFLINE=1 python3 benchmarks/gpu_check.py --data "$DATA" "$@"
