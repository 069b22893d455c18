#!/usr/bin/env bash
# The engine on a GPU (benchmarks/gpu_check.py says what it measures): a random
# ~1.1B-parameter Llama-style model, engine vs a hand-written loop, CPU/GPU agreement.
# Needs the project's venv with a CUDA build of torch, and ~10 GB of GPU memory.
#
#   bash benchmarks/gpu_check.sh [--n 2000] [--layers 22] [--agree 64]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv || true
exec "$PYTHON" benchmarks/gpu_check.py "$@"
