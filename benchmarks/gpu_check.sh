#!/usr/bin/env bash
# What the training recipe assumes on CUDA, measured in at most 8 minutes on one GPU (benchmarks/gpu_check.py):
# training images/s of the planned configurations with channels_last and torch.compile on and off, a one-GPU
# DDP run, and ONNX Runtime's CUDA provider. Figures go to $OUT/gpu_check.json (or ./gpu_check.json); copy
# them into benchmarks/RESULTS.md with the machine and date.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
"$python" -c "import facecli" 2>/dev/null || "$python" -m pip install --quiet -c constraints.txt -e '.[export]'
timeout 470 "$python" benchmarks/gpu_check.py --out "${OUT:-.}/gpu_check.json"
